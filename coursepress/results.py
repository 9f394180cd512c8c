import json
import os
from pathlib import Path


def save_results(section: int, metrics: dict) -> None:
    """Write the section's headline numbers to `<results dir>/section<N>.json`.

    The build points COURSE_RESULTS_DIR at `dist/results`; elsewhere (Colab, a laptop) the file
    goes to `./results`. Tensors and numpy values are converted to plain floats/lists.
    """

    def plain(value):
        if hasattr(value, "tolist"):
            return value.tolist()
        if isinstance(value, dict):
            return {str(k): plain(v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [plain(v) for v in value]
        return value

    out_dir = Path(os.environ.get("COURSE_RESULTS_DIR", "results"))
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"section{section}.json"
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(plain(metrics), indent=2, sort_keys=True))
    tmp.replace(path)
    print(f"Saved {len(metrics)} results to {path.name}")
