"""DiffWave presets (paper arXiv 2009.09761, Table 1; lmnt-com/diffwave): `--preset NAME`."""

PRESETS = {
    # Small enough to train in seconds on 2 CPU cores: tests and the demo.
    "tiny": {"data": {"crop_samples": 4000, "batch_size": 4, "shuffle_buffer": 64},
             "network": {"residual_layers": 4, "residual_channels": 16, "dilation_cycle": 4},
             "diffusion": {"num_steps": 50, "beta_end": 0.05},   # BASE's schedule
             "train": {"learning_rate": 1e-3, "checkpoint_every": 50, "log_every": 10,
                       "audio_every": 100}},
    # DiffWave BASE (paper Table 1): 30 layers × 64 channels, cycle 10, T = 50.
    "base": {},
    # DiffWave LARGE vocoder: 128 channels, T = 200, fast schedule ends at 0.7.
    "large": {"network": {"residual_channels": 128},
              "diffusion": {"num_steps": 200, "beta_end": 0.02,
                            "inference_betas": (1e-4, 1e-3, 0.01, 0.05, 0.2, 0.7)}},
    # SC09 unconditional: 36 layers × 256 channels, cycle 12, T = 200, β 1e-4..0.02.
    "sc09": {"network": {"residual_layers": 36, "residual_channels": 256, "dilation_cycle": 12},
             "diffusion": {"num_steps": 200, "beta_end": 0.02}},
    # pretrained/vocoder: a mel vocoder on 2 CPU cores, BASE with 20 layers, 16 mel frames a crop,
    # PriorGrad's data-dependent prior (it won the A/B on the corpus's validation voices).
    "vocoder": {"data": {"batch_size": 8, "crop_samples": 4096},
                "network": {"conditioning": "mel", "residual_layers": 20, "prior": "priorgrad"},
                "train": {"learning_rate": 4e-4, "log_every": 200, "audio_every": 1000000}},
}
