"""Text-to-audio presets (Moûsai arXiv 2301.11757): the DiffAE and the latent generator DiffGen."""

# The text-to-audio family (Moûsai): v-objective, EMA for inference (GUIDE's seed 002 figures).
_T2A_TRAIN = {"learning_rate": 1e-4, "ema_decay": 0.999}
_T2A_TINY_TRAIN = {"learning_rate": 1e-3, "checkpoint_every": 50, "log_every": 5,
                   "audio_every": 100_000}
DIFFAE_PRESETS = {
    # 0.5 s crops, a 4-level decoder over 4-sample patches, latent 8 × (T/256): tests, CPU.
    "tiny": {"data": {"crop_samples": 8192, "batch_size": 4, "shuffle_buffer": 64},
             "network": {"n_fft": 255, "hop_length": 64, "encoder_channels": 32,
                         "encoder_multipliers": (1, 1, 2), "encoder_factors": (2, 2),
                         "encoder_blocks": (1, 1), "latent_channels": 8,
                         "channels": (16, 32, 32, 64), "factors": (1, 2, 4, 4),
                         "items": (1, 1, 1, 1), "attentions": (0, 0, 0, 1), "heads": 2,
                         "head_features": 16, "inject_depth": 3, "patch": 4},
             "train": _T2A_TINY_TRAIN},
    # The reference configuration (2^18-sample crops in the paper; 2^16 here at 16 kHz mono).
    "base": {"data": {"crop_samples": 65536, "batch_size": 8}, "train": _T2A_TRAIN},
}
DIFFGEN_PRESETS = {
    "tiny": {"data": {"crop_samples": 8192, "batch_size": 4, "shuffle_buffer": 64},
             "network": {"text_max_length": 48, "latent_channels": 8, "channels": (32, 64),
                         "factors": (1, 2), "items": (1, 1), "attentions": (0, 1),
                         "cross_attentions": (1, 1), "heads": 2, "head_features": 16},
             "train": _T2A_TINY_TRAIN},
    "base": {"data": {"crop_samples": 65536, "batch_size": 8}, "train": _T2A_TRAIN},
}
