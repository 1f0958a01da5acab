"""A generation web UI (Gradio) for every run and exported SavedModel under the given directories.

    python app.py [--runs DIR ...] [--port 7860] [--host 127.0.0.1] [--max-upload-mb 20]

The form adapts to the chosen run's family (label, text and guidance, audio to start from,
in/out-painting, a mel input, a neural vocoder); generation is the Python API's
(diffusion.Pipeline), as for generate.py, so a clip made here equals the CLI's for the same
options. --runs defaults to pretrained/ and runs/ (those that exist), so the
bundled models are there on a fresh clone. Only directories found under --runs are offered or accepted (every path
is resolved and checked), uploads are limited in size and length, and every bad input or
failing run becomes a message in the page while the server keeps serving. Details: docs/ui.md.
"""
import argparse
import collections
import logging
import os
import shutil
import sys
import tempfile
import threading
import traceback

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"          # offline: no telemetry, no update check
from params import quiet_tensorflow  # noqa: E402

MAX_CLIPS = 4                # clips per request (one player each)
MAX_SECONDS = 30.0           # length of a generated clip
MAX_UPLOAD_SECONDS = 60.0    # length of an uploaded clip (checked from its header)
MAX_UPLOAD_MB = 20           # size of one upload (the server refuses larger ones)
DEFAULT_RUNS = ("pretrained", "runs")   # --runs when none is given
SCAN_DEPTH = 3               # how deep below each --runs directory runs are looked for
KEEP_REQUESTS = 16           # output directories kept (older ones are deleted)
log = logging.getLogger("app")


def inside(path: str, root: str) -> bool:
    return os.path.commonpath([path, root]) == root


class Catalog:
    """The runs (params.json) and SavedModels (saved_model.pb) below the configured roots, by
    key "ROOT/relative/path"; nothing else can be named (resolve() is the only way in)."""

    def __init__(self, roots):
        self.roots = [(os.path.normpath(r), os.path.realpath(r)) for r in roots]
        self.entries = {}
        self.scan()

    def scan(self) -> dict:
        found = {}
        for label, real_root in self.roots:
            if not os.path.isdir(real_root):
                continue
            for dirpath, dirnames, filenames in os.walk(real_root, followlinks=True):
                real = os.path.realpath(dirpath)
                rel = os.path.relpath(dirpath, real_root)
                if not inside(real, real_root) or rel.count(os.sep) >= SCAN_DEPTH:
                    dirnames[:] = []
                    continue
                dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
                kind = ("savedmodel" if "saved_model.pb" in filenames else
                        "run" if "params.json" in filenames else None)
                if kind:
                    found[label if rel == "." else f"{label}/{rel}"] = (real, kind)
                    dirnames[:] = []
        self.entries = found
        return found

    def resolve(self, key):
        """(real path, "run" | "savedmodel") of a listed key; ValueError for anything else."""
        if key not in self.entries:
            self.scan()
        if not key or key not in self.entries:
            raise ValueError(f"{key!r} is not a run or SavedModel under the configured "
                             f"directories ({', '.join(r for r, _ in self.roots)})")
        real, kind = self.entries[key]
        now = os.path.realpath(real)               # re-resolved: a link may have changed since
        if not any(inside(now, root) for _, root in self.roots):
            raise ValueError(f"{key!r} resolves outside the configured directories")
        return now, kind

    def runs_where(self, test) -> list:
        out = []
        for key, (real, kind) in sorted(self.entries.items()):
            if kind == "run":
                try:
                    if test(run_params(real)):
                        out.append(key)
                except ValueError:
                    pass
        return out


def run_params(run_dir):
    from params import Params, ParamsError
    try:
        return Params.load(os.path.join(run_dir, "params.json"))
    except ParamsError as e:
        raise ValueError(str(e)) from None


class Cancelled(Exception):
    pass


class Server:
    """The state behind the page: the catalog, loaded runs (a few, most recent first), the
    sessions asked to cancel, the output directories."""

    def __init__(self, roots, work_dir):
        self.catalog = Catalog(roots)
        self.work_dir = work_dir
        self.uploads = os.path.realpath(os.environ["GRADIO_TEMP_DIR"])
        self.out_root = os.path.join(work_dir, "out")
        os.makedirs(self.out_root, exist_ok=True)
        self.loaded = collections.OrderedDict()
        self.cancelled = set()
        self.lock = threading.Lock()

    # --- loading, cached (a Pipeline keeps its family's traced steps) ----------------------
    def pipeline(self, path, use_ema=True):
        """The Pipeline of a run directory or SavedModel under --runs (the 3 most recent)."""
        from diffusion import Pipeline
        path = self.check_path(path)
        key = (path, use_ema)
        if key not in self.loaded:
            self.loaded[key] = Pipeline.from_pretrained(path, use_ema=use_ema)
        self.loaded.move_to_end(key)
        while len(self.loaded) > 3:
            self.loaded.popitem(last=False)
        return self.loaded[key]

    def check_path(self, path):
        real = os.path.realpath(path)
        if not any(inside(real, root) for _, root in self.catalog.roots):
            raise ValueError(f"{path}: outside the configured directories")
        return real

    def check_upload(self, path, what, audio=True):
        """An uploaded file's real path (in the server's upload folder), its header checked."""
        if not path:
            return None
        real = os.path.realpath(path)
        if not inside(real, self.uploads):
            raise ValueError(f"{what}: not an uploaded file")
        if os.path.getsize(real) > MAX_UPLOAD_MB * 2 ** 20:
            raise ValueError(f"{what}: larger than {MAX_UPLOAD_MB} MB")
        if audio:
            from data.audio_io import probe
            info = probe(real)
            if info.seconds > MAX_UPLOAD_SECONDS:
                raise ValueError(f"{what}: {info.seconds:.1f} s long; at most "
                                 f"{MAX_UPLOAD_SECONDS:g} s")
        return real

    # --- the form ------------------------------------------------------------------------
    def form(self, key) -> dict:
        """What the form shows for `key`: {"info", "kind", visibility flags, choices, …}."""
        from diffusion.families.registry import family_for
        path, kind = self.catalog.resolve(key)
        if kind == "savedmodel":
            accepts = self.pipeline(path).accepts
            served = accepts.kind
            return {"info": f"SavedModel ({served}), {self.pipeline(path).sample_rate} Hz; "
                            f"sampler and steps fixed at export; runs in one graph call (no "
                            f"per-step progress, no cancel)",
                    "run": False, "seconds": served in ("waveform", "class", "text"),
                    "label": accepts.num_classes != 0, "text": served == "text",
                    "guidance": served == "text",
                    "mel": served == "vocoder", "source": False, "mask": False,
                    "vocoder": False, "samplers": ["(fixed)"], "sampler": "(fixed)"}
        params = run_params(path)
        family = family_for(params)
        cond = family.conditioning
        info = (f"{params.model} run, {params.data.sample_rate} Hz, conditioning: {cond}; "
                f"samplers {', '.join(family.samplers)}; T = {params.diffusion.num_steps}")
        if cond == "class":
            info += f"; labels 0..{params.network.num_classes - 1}"
        return {"info": info, "run": True, "seconds": cond != "mel" and not family.reconstructs,
                "label": cond == "class", "text": cond == "text", "mel": cond == "mel",
                "guidance": cond == "text" or bool(getattr(params.network, "cfg_drop", 0)),
                "source": cond not in ("text", "mel"),
                "mask": cond not in ("text", "mel") and not family.reconstructs,
                "vocoder": family.makes_images, "samplers": list(family.samplers),
                "sampler": family.default_sampler}

    # --- one request -----------------------------------------------------------------------
    def generate(self, session, key, num, seconds, sampler, steps, eta, seed, label, text,
                 guidance, decode_steps, source, strength, mask_start, mask_end, mel, vocoder,
                 progress=None):
        """(status line, [(wav, png, caption)]); raises ValueError-like errors, Cancelled."""
        import dataclasses

        import numpy as np

        from diffusion.requests import REQUESTS
        path, kind = self.catalog.resolve(key)
        num = 1 if num is None else int(num)
        if not 1 <= num <= MAX_CLIPS:
            raise ValueError(f"clips must be in 1..{MAX_CLIPS}, got {num}")
        if seconds is None or not 0 < float(seconds) <= MAX_SECONDS:
            raise ValueError(f"seconds must be in (0, {MAX_SECONDS:g}], got {seconds}")
        seed = 0 if seed is None else int(seed)
        if not 0 <= seed < 2 ** 31:
            raise ValueError(f"seed must be in 0..{2 ** 31 - 1}, got {seed}")
        pipe = self.pipeline(path)
        source = self.check_upload(source, "audio to start from")
        mel = self.check_upload(mel, "mel input", audio=not str(mel).endswith(".npy"))
        given = {"seconds": float(seconds), "sampler": sampler if pipe.run else None,
                 "steps": int(steps) if steps else None,   # an empty Number: None or 0
                 "eta": eta or None, "label": None if label is None else int(label),
                 "text": text or None, "guidance": guidance or None,  # a browser's empty: 0
                 "decode_steps": None if decode_steps is None else int(decode_steps),
                 "from_audio": source, "mel": mel,
                 "strength": (0.5 if strength is None else strength) if source else None,
                 "mask_start": mask_start or None, "mask_end": mask_end or None,
                 "vocoder": self.catalog.resolve(vocoder)[0] if vocoder else None}
        taken = {f.name for f in dataclasses.fields(REQUESTS[pipe.accepts.kind])}
        arguments = {k: v for k, v in given.items() if v is not None and k in taken}

        def step(i, total):
            if session in self.cancelled:
                raise Cancelled(f"cancelled after step {i} of {total}")
            if progress is not None:
                progress((i, total), desc=f"{result_sampler}: denoising", unit="steps")
        result_sampler = arguments.get("sampler") or pipe.accepts.default_sampler
        out = pipe(num=num, seed=seed, progress=step, **arguments)
        audio, rate = out.audio, out.sample_rate
        line = (f"{out.sampler}, {out.steps} steps, {out.elapsed:.1f} s" if out.steps else
                f"SavedModel {pipe.accepts.kind}, {out.elapsed:.1f} s") + \
            (f"; {out.info}" if out.info else "")
        if not np.all(np.isfinite(audio)):
            raise ValueError("the model produced NaN or infinite samples")
        directory = tempfile.mkdtemp(dir=self.out_root)
        self.prune()
        clips = []
        what = "waveform and log-mel" + ("; the mel image is saved beside it"
                                          if out.images is not None else "")
        for i, wav in enumerate(out.save(directory)):
            clips.append((wav, wav[:-4] + ".png", f"clip {i + 1}: {audio.shape[1] / rate:.2f} s "
                                                  f"at {rate} Hz ({what})"))
        status = (f"Made {len(clips)} clip(s) of {audio.shape[1] / rate:.2f} s from {key} "
                  f"({line}).")
        return status, clips

    def prune(self):
        dirs = sorted((os.path.join(self.out_root, d) for d in os.listdir(self.out_root)),
                      key=os.path.getmtime)
        for d in dirs[:-KEEP_REQUESTS]:
            shutil.rmtree(d, ignore_errors=True)


def build(server):
    """The Blocks of the page (api names: /form, /generate, /cancel, /rescan)."""
    import gradio as gr

    from data.audio_io import AudioError
    from diffusion.families.registry import RunError

    keys = sorted(server.catalog.entries)
    vocoders = server.catalog.runs_where(
        lambda p: getattr(p.network, "conditioning", None) == "mel")
    with gr.Blocks(title="tf-audio-diffusion") as demo:
        gr.Markdown("## tf-audio-diffusion: generate audio from a trained run or SavedModel")
        with gr.Row():
            with gr.Column(scale=1):
                run = gr.Dropdown(keys, value=keys[0] if keys else None, allow_custom_value=True,
                                  label="Run or SavedModel", elem_id="run")
                rescan = gr.Button("Rescan directories", size="sm")
                info = gr.Markdown(elem_id="info")
                with gr.Row():
                    num = gr.Number(1, precision=0, label=f"Clips (1..{MAX_CLIPS})")
                    seconds = gr.Number(1.0, label=f"Seconds (≤ {MAX_SECONDS:g})",
                                        elem_id="seconds")
                    seed = gr.Number(0, precision=0, label="Seed")
                with gr.Row():
                    sampler = gr.Dropdown([], label="Sampler", allow_custom_value=True)
                    steps = gr.Number(None, precision=0, label="Steps (ddim, v; empty: default)")
                    eta = gr.Number(0.0, label="η (ddim; 0 = deterministic)")
                label = gr.Number(None, precision=0, label="Class label", visible=False,
                                  elem_id="label")
                text = gr.Textbox(label="Text prompt", visible=False)
                with gr.Row():
                    guidance = gr.Number(None, label="Guidance (empty or 0: the run's)",
                                         visible=False)
                    decode_steps = gr.Number(50, precision=0, label="Decoder steps",
                                             visible=False)
                source = gr.File(label=f"Audio to start from (audio-to-audio / variations; "
                                       f"≤ {MAX_UPLOAD_MB} MB, ≤ {MAX_UPLOAD_SECONDS:g} s)",
                                 visible=False)
                strength = gr.Number(0.5, label="Strength (0, 1]: 1 = from noise",
                                     visible=False)
                with gr.Row():
                    mask_start = gr.Number(0.0, label="Keep first seconds (out-painting)",
                                           visible=False)
                    mask_end = gr.Number(0.0, label="Keep last seconds", visible=False)
                mel = gr.File(label="Mel input: log-mel .npy [frames, n_mels] or audio",
                              visible=False)
                vocoder = gr.Dropdown([""] + vocoders, value="", allow_custom_value=True,
                                      label="Neural vocoder (empty: Griffin-Lim)", visible=False)
                with gr.Row():
                    go = gr.Button("Generate", variant="primary", elem_id="generate")
                    stop = gr.Button("Cancel", variant="stop", elem_id="cancel")
            with gr.Column(scale=1):
                status = gr.Markdown(elem_id="status")
                players = [gr.Audio(type="filepath", label=f"Clip {i + 1}", visible=i == 0,
                                    elem_id=f"clip{i + 1}", interactive=False)
                           for i in range(MAX_CLIPS)]
                figures = gr.Gallery(label="Spectrograms", format="png", columns=2,
                                     elem_id="spectrograms")
                files = gr.File(label="WAV downloads", file_count="multiple", elem_id="wavs")

        controls = [seconds, sampler, steps, eta, label, text, guidance, decode_steps, source,
                    strength, mask_start, mask_end, mel, vocoder]

        def on_form(key):
            try:
                f = server.form(key)
            except (RunError, ValueError, OSError) as e:
                return [f"**Error:** {e}"] + [gr.update() for _ in controls]
            show = lambda flag: gr.update(visible=flag)          # noqa: E731
            return [f["info"], show(f["seconds"]),
                    gr.update(choices=f["samplers"], value=f["sampler"], visible=f["run"]),
                    show(f["run"]), show(f["run"]), show(f["label"]), show(f["text"]),
                    gr.update(visible=f["guidance"], value=None),  # None: the run's scale
                    show(f["text"] and f["run"]), show(f["source"]),
                    show(f["source"]), show(f["mask"]), show(f["mask"]), show(f["mel"]),
                    show(f["vocoder"])]

        def on_generate(key, num, seconds, sampler, steps, eta, seed, label, text, guidance,
                        decode_steps, source, strength, mask_start, mask_end, mel, vocoder,
                        request: gr.Request, progress=gr.Progress()):
            session = request.session_hash if request is not None else None
            server.cancelled.discard(session)
            try:
                with server.lock:
                    status, clips = server.generate(
                        session, key, num, seconds, sampler, steps, eta, seed, label, text,
                        guidance, decode_steps, source, strength, mask_start, mask_end, mel,
                        vocoder, progress)
            except Cancelled as e:
                status, clips = f"**Cancelled** ({e}).", []
            except (RunError, AudioError, ValueError, OSError) as e:
                status, clips = f"**Error:** {e}", []
            except Exception as e:                        # noqa: BLE001 — keep serving
                log.error("generation failed:\n%s", traceback.format_exc())
                status, clips = f"**Error:** unexpected {type(e).__name__}: {e}", []
            finally:
                server.cancelled.discard(session)
            audio = [gr.update(value=clips[i][0] if i < len(clips) else None,
                               visible=i < max(1, len(clips))) for i in range(MAX_CLIPS)]
            return ([status, *audio, [(png, caption) for _, png, caption in clips],
                     [wav for wav, _, _ in clips] or None])

        def on_cancel(request: gr.Request):
            if request is not None:
                server.cancelled.add(request.session_hash)
            return "Cancelling…"

        def on_rescan():
            server.catalog.scan()
            new = sorted(server.catalog.entries)
            return gr.update(choices=new), gr.update(choices=[""] + server.catalog.runs_where(
                lambda p: getattr(p.network, "conditioning", None) == "mel"))

        run.change(on_form, run, [info, *controls], api_name="form")
        demo.load(on_form, run, [info, *controls], api_name=False)
        go.click(on_generate, [run, num, seconds, sampler, steps, eta, seed, label, text,
                               guidance, decode_steps, source, strength, mask_start, mask_end,
                               mel, vocoder], [status, *players, figures, files],
                 api_name="generate", concurrency_limit=1, concurrency_id="generate")
        stop.click(on_cancel, None, status, api_name="cancel", concurrency_limit=None,
                   queue=False)
        rescan.click(on_rescan, None, [run, vocoder], api_name="rescan")
    return demo


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--runs", nargs="+", default=None,
                   help="directories holding run directories and exported SavedModels "
                        f"(default: those of {' '.join(DEFAULT_RUNS)} that exist)")
    p.add_argument("--port", type=int, default=7860)
    p.add_argument("--host", default="127.0.0.1",
                   help="address to bind (default loopback only; 0.0.0.0 exposes it)")
    p.add_argument("--max-upload-mb", type=int, default=MAX_UPLOAD_MB,
                   help="largest upload the server accepts")
    return p.parse_args(argv)


def main(argv=None) -> int:
    global MAX_UPLOAD_MB
    args = parse_args(argv)
    MAX_UPLOAD_MB = args.max_upload_mb
    if args.runs is None:                 # the bundled models and the user's runs
        args.runs = [r for r in DEFAULT_RUNS if os.path.isdir(r)]
        if not args.runs:
            print("error: no pretrained/ or runs/ here: give --runs DIR", file=sys.stderr)
            return 2
    missing = [r for r in args.runs if not os.path.isdir(r)]
    if missing:
        print(f"error: --runs {' '.join(missing)}: no such directory", file=sys.stderr)
        return 2
    work = tempfile.mkdtemp(prefix="tf-audio-diffusion-ui-")
    os.environ["GRADIO_TEMP_DIR"] = os.path.join(work, "gradio")   # uploads and served outputs
    os.makedirs(os.environ["GRADIO_TEMP_DIR"])
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)
    quiet_tensorflow()
    import gradio as gr
    server = Server(args.runs, work)
    print(f"{len(server.catalog.entries)} run(s) / SavedModel(s) under {' '.join(args.runs)}; "
          f"serving on http://{args.host}:{args.port}", flush=True)
    theme = gr.themes.Default(font=["ui-sans-serif", "system-ui", "sans-serif"],
                              font_mono=["ui-monospace", "monospace"])   # no web fonts: offline
    try:
        build(server).queue(default_concurrency_limit=1).launch(
            server_name=args.host, server_port=args.port, share=False, ssr_mode=False,
            mcp_server=False, max_file_size=f"{args.max_upload_mb}mb", theme=theme,
            allowed_paths=[server.out_root], show_error=True, quiet=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
