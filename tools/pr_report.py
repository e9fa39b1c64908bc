"""pr_report: what this checkout changes against a base revision, as one markdown report with images, for a reviewer:
the stages whose runs changed (and whether their outputs did), `dvc metrics diff` and `dvc params diff`, what the data
change was (`dvc diff` and the split counts), and every plot that changed, drawn as an image (`dvc plots diff`; the
Vega-Lite ones rendered with vl-convert, the figures shown before and after).

    python tools/pr_report.py --base main [--out pr-report]      (make pr-report BASE=main)

The pull-request workflow posts `pr-report/report.md` as one comment, updated in place on every push (CML's
`cml comment update`, which uploads the images the report links to)."""

import argparse
import hashlib
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]


def run(*command, check=True) -> str:
    result = subprocess.run(command, cwd=REPO, capture_output=True, text=True)
    if check and result.returncode != 0:
        sys.exit(f"pr_report: {' '.join(command[:3])} failed: {(result.stderr or result.stdout).strip()[-500:]}")
    return result.stdout


def dvc(*args, check=True) -> str:
    return run(sys.executable, "-m", "dvc", *args, check=check)


def stage_runs(base: str) -> list:
    """(stage, what changed in its run record, whether its outputs changed) for each stage whose dvc.lock entry differs
    between the base and this checkout."""
    base_lock = yaml.safe_load(run("git", "show", f"{base}:dvc.lock", check=False) or "{}") or {}
    head_lock = yaml.safe_load(Path(REPO, "dvc.lock").read_text()) if Path(REPO, "dvc.lock").exists() else {}
    rows = []
    for name, head in (head_lock or {}).get("stages", {}).items():
        old = base_lock.get("stages", {}).get(name)
        if old == head:
            continue
        if old is None:
            rows.append((name, "new stage", "new"))
            continue
        what = [label for key, label in (("cmd", "command"), ("deps", "deps"), ("params", "params"))
                if old.get(key) != head.get(key)]
        changed_deps = [dep["path"] for dep, before in zip(head.get("deps", []), old.get("deps", [])) if dep != before]
        detail = ", ".join(what) + (f" ({', '.join(changed_deps[:4])}{' ...' if len(changed_deps) > 4 else ''})"
                                    if changed_deps else "")
        outs = "changed" if old.get("outs") != head.get("outs") else "the same bytes"
        rows.append((name, detail or "its record", outs))
    return rows


def data_change(base: str) -> list:
    """Markdown lines: the DVC-tracked data that was added, changed or removed, and the split counts."""
    found = json.loads(dvc("diff", base, "--json", check=False) or "{}")
    changed = {}  # path: kind, for what DVC tracks under data/
    for kind in ("added", "modified", "deleted", "renamed"):
        for entry in found.get(kind, []):
            path = entry["path"] if isinstance(entry.get("path"), str) else entry["path"].get("new")
            if path.startswith("data/") or path.endswith(".dvc"):
                changed[path] = kind
    folders = [path for path in changed if path.endswith("/")]
    lines = []
    for path, kind in changed.items():
        inside = [other for other in changed if other != path and other.startswith(path)] if path in folders else []
        if not any(path != folder and path.startswith(folder) for folder in folders):
            lines.append(f"- {kind}: `{path}`" + (f" ({len(inside)} files)" if inside else ""))
    counts = "metrics/data_counts.json"  # prepare's images per split
    before = run("git", "show", f"{base}:{counts}", check=False)
    after = Path(REPO, counts).read_text() if Path(REPO, counts).exists() else ""
    old, new = (json.loads(text) if text else {} for text in (before, after))
    if old != new:
        lines.append("- images per split: " + ", ".join(f"{split} {old.get(split, 0)} → {new.get(split, 0)}"
                                                        for split in ("train", "val", "test")))
    return lines


def changed_plots(base: str, out: Path) -> list:
    """(title, [image file names in `out`]) of every plot whose data or picture differs between the revisions."""
    shown = out / "images"
    shown.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as exported:  # where dvc copies the image plots of both revisions
        return _changed_plots(base, shown, exported)


def _changed_plots(base: str, shown: Path, exported: str) -> list:
    found = json.loads(dvc("plots", "diff", base, "--json", "--out", exported) or "{}").get("data", {})
    plots = []
    for title, renders in found.items():
        slug = hashlib.sha256(title.encode()).hexdigest()[:10]
        vega = [render for render in renders if render.get("type") == "vega"]
        images = [render for render in renders if render.get("type") == "image"]
        if vega:
            spec = vega[0]["content"]
            by_rev = {}
            for row in spec.get("data", {}).get("values", []):
                by_rev.setdefault(row.get("rev"), []).append({k: v for k, v in row.items() if k != "rev"})
            if len(by_rev) < 2 or len({json.dumps(rows, sort_keys=True) for rows in by_rev.values()}) > 1:
                import vl_convert

                name = f"{slug}.png"
                (shown / name).write_bytes(vl_convert.vegalite_to_png(spec, scale=1))
                plots.append((title, [name]))
        elif images:
            contents = {render["revisions"][0]: Path(render["url"]).read_bytes() for render in images}
            if len(set(contents.values())) > 1 or len(contents) < 2:
                names = []
                for rev, content in contents.items():
                    names.append(f"{slug}-{'base' if rev == base else 'head'}.png")
                    (shown / names[-1]).write_bytes(content)
                plots.append((title, names))
    return plots


def report(base: str, out: Path) -> str:
    head = run("git", "rev-parse", "--short", "HEAD").strip()
    base_commit = run("git", "rev-parse", "--short", base).strip()
    lines = [f"## mnist-dvc: this branch ({head}) against `{base}` ({base_commit})", ""]
    runs = stage_runs(base)
    lines += ["### Stages whose runs changed", ""]
    if runs:
        lines += ["| stage | what changed | outputs |", "|---|---|---|"]
        lines += [f"| `{name}` | {what} | {outs} |" for name, what, outs in runs]
    else:
        lines.append("None: every stage's run record is as on the base.")
    metrics = dvc("metrics", "diff", base, "--md", "--precision", "4").strip()
    params = dvc("params", "diff", base, "--md").strip()
    lines += ["", "### Metrics", "", metrics or "No metric changed.", "", "### Params", "", params or
              "No param changed.", "", "### Data", ""]
    lines += data_change(base) or ["No DVC-tracked data changed."]
    lines += ["", "### Plots that changed", ""]
    plots = changed_plots(base, out)
    for title, names in plots:
        lines += [f"**{title}**", "", " ".join(f"![{title} ({Path(name).stem.rsplit('-', 1)[-1]})](images/{name})"
                                               for name in names), ""]
    if not plots:
        lines.append("No plot changed.")
    return "\n".join(lines).rstrip() + "\n"


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--base", required=True, help="the revision to compare with (a branch, tag or commit)")
    parser.add_argument("--out", default="pr-report", help="the folder to write report.md and images/ in")
    args = parser.parse_args()
    out = Path(args.out) if Path(args.out).is_absolute() else REPO / args.out
    out.mkdir(parents=True, exist_ok=True)
    (out / "report.md").write_text(report(args.base, out))
    print(f"pr_report: wrote {out / 'report.md'}")


if __name__ == "__main__":
    main()
