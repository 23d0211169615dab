"""The `mechinterp` command line: start, check, build, nbgrader init, reproduce, list."""

from __future__ import annotations

import argparse
import sys
import time
from datetime import datetime
from pathlib import Path

from mechinterp.autograder.chapters import UnknownName, chapters, get_chapter


def _selected(names: list[str] | None) -> list:
    """The chapters named on the command line, or all of them."""
    return [get_chapter(c) for c in names] if names else list(chapters().values())


def _cmd_list(args) -> int:
    for ch in chapters().values():
        n = len(ch.checks())
        print(f"{ch.number:02d}  {ch.slug:24s} {n} exercises")
    return 0


def _same_cells(a, b) -> bool:
    return [(c.cell_type, c.source) for c in a.cells] == [(c.cell_type, c.source) for c in b.cells]


def _cmd_start(args) -> int:
    import nbformat
    from mechinterp.autograder.build import student_notebook

    target = Path(args.dir)
    target.mkdir(parents=True, exist_ok=True)
    selected = _selected(args.chapters)
    for ch in selected:
        fresh = student_notebook(ch)
        path = target / f"{ch.stem}.ipynb"
        if path.exists():
            try:
                current = nbformat.read(path, as_version=4)
            except Exception:
                current = None
            if current is not None and _same_cells(current, fresh):
                print(f"  {path}: up to date")
                continue
            if not args.force:
                print(f"  {path}: skipped, you have edited it (use --force to replace it; a backup is kept)")
                continue
            backup = path.with_name(f"{path.stem}.backup-{datetime.now():%Y%m%d-%H%M%S}.ipynb")
            path.rename(backup)
            print(f"  {path}: replaced, your version is saved as {backup.name}")
        else:
            print(f"  {path}: created")
        nbformat.write(fresh, path)
    print(f"Open the notebooks in {target} with Jupyter; run `mechinterp check CHAPTER NOTEBOOK` to grade one.")
    return 0


def _cmd_check(args) -> int:
    from mechinterp.autograder.grading import grade_file

    ch = get_chapter(args.chapter)
    path = Path(args.path) if args.path else Path(f"{ch.stem}.ipynb")
    if not path.exists():
        print(f"error: {path} not found (give the notebook or .py file to grade)", file=sys.stderr)
        return 2
    import matplotlib

    matplotlib.use("Agg")
    graded = grade_file(ch.slug, path)
    if graded.output:
        print(graded.output, end="")
    if graded.report is None:
        print(f"Chapter {ch.stem} — {path}\nno report: loading or grading your file stopped the grader's "
              f"process ({graded.error}). Look for os._exit, sys.exit or a crash at the top level of your file.")
        return 1
    for p in graded.problems:
        print(f"warning: {p}", file=sys.stderr)
    print(f"Chapter {ch.stem} — {path}")
    print(graded.report.table())
    return 0 if graded.report.score == graded.report.max_score else 1


def _cmd_build(args) -> int:
    if args.student_kit:
        from mechinterp.autograder.kit import build_kit

        kit = build_kit(Path(args.student_kit), args.chapters or None)
        print(f"student kit: {kit.wheel}")
        for slug, path in kit.packs.items():
            only = f" (graded only with the full package: {', '.join(kit.live_only[slug])})" \
                if kit.live_only[slug] else ""
            print(f"  {slug}: {path}{only}")
        return 0
    from mechinterp.autograder.build import build

    selected = _selected(args.chapters)
    for ch in selected:
        built = build(ch.slug, Path(args.out), execute_solution=not args.no_execute)
        print(f"{ch.stem}: built in {built.seconds:.1f} s")
        for p in (built.student, built.solution, built.nbgrader):
            if p:
                print(f"  {p}")
    return 0


def _cmd_nbgrader(args) -> int:
    from mechinterp.autograder.nbgrader_course import init_course

    written = init_course(Path(args.course_dir), args.chapters or None, course_id=args.course_id,
                          run_experiments=args.run_experiments, hidden_cases=not args.no_hidden_cases)
    print(f"nbgrader course in {Path(args.course_dir).resolve()}:")
    for p in written:
        print(f"  {p}")
    print("Next, from that folder: nbgrader generate_assignment 01_superposition, put submissions in "
          "submitted/<student>/01_superposition/, then nbgrader autograde 01_superposition and "
          "nbgrader generate_feedback 01_superposition.")
    return 0


def _cmd_reproduce(args) -> int:
    from mechinterp.course.toolkit import get_device
    from mechinterp.course.toolkit.findings import format_findings

    selected = _selected(args.chapters)
    failed = 0
    for ch in selected:
        start = time.perf_counter()
        module = ch.solutions()
        if hasattr(module, "report"):  # a chapter may print its own summary first (e.g. circuits side by side)
            print(module.report(get_device(args.device)) + "\n")
        results = module.findings(get_device(args.device))
        print(format_findings(ch.stem, results))
        print(f"({time.perf_counter() - start:.1f} s)\n")
        failed += sum(not f.passed for f in results)
    return 1 if failed else 0


def _cmd_zoo(args) -> int:
    from mechinterp.course.toolkit import zoo

    if args.zoo_command == "list":
        for name in zoo.zoo_names():
            card = zoo.load_card(name)
            cfg = card["config"]
            size = (zoo.zoo_dir() / name / "model.safetensors").stat().st_size / 1e6
            print(f"zoo/{name:14s} {cfg['n_layer']} layers, d_model {cfg['n_embd']}, {cfg['n_head']} heads, "
                  f"vocab {cfg['vocab_size']}, {size:.1f} MB, trained {card['train_seconds'] / 60:.0f} min")
        return 0
    if args.zoo_command == "train":
        from mechinterp.course.toolkit.zoo.recipes import train

        out = Path(args.out) if args.out else None
        card = train(args.name, out, Path(args.cache) if args.cache else None)
        print(f"trained {args.name} in {card['train_seconds'] / 60:.1f} min")
        return 0
    from mechinterp.course.toolkit.findings import format_findings
    from mechinterp.course.toolkit.zoo.verification import verify

    failed = 0
    for name in [args.name] if args.name else zoo.zoo_names():
        start = time.perf_counter()
        found = verify(name)
        print(format_findings(f"zoo/{name}", found))
        print(f"({time.perf_counter() - start:.1f} s)\n")
        failed += sum(not f.passed for f in found)
    return 1 if failed else 0


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="mechinterp", description="Mechanistic interpretability course.")
    sub = p.add_subparsers(dest="command", required=True)
    sub.add_parser("list", help="list the chapters").set_defaults(func=_cmd_list)

    s = sub.add_parser("start", help="copy the student notebooks into a workspace")
    s.add_argument("dir", nargs="?", default="mechinterp-workspace")
    s.add_argument("--chapters", nargs="*", default=None)
    s.add_argument("--force", action="store_true", help="replace notebooks you edited (keeps a backup)")
    s.set_defaults(func=_cmd_start)

    c = sub.add_parser("check", help="grade a notebook or .py file against the reference")
    c.add_argument("chapter")
    c.add_argument("path", nargs="?", help="notebook or .py file (default: ./NN_slug.ipynb)")
    c.set_defaults(func=_cmd_check)

    b = sub.add_parser("build", help="write student / executed solution / nbgrader notebooks")
    b.add_argument("chapters", nargs="*")
    b.add_argument("--out", default="build")
    b.add_argument("--no-execute", action="store_true", help="do not execute the solution notebooks")
    b.add_argument("--student-kit", metavar="OUT", default=None,
                   help="instead: record answer packs and build the student kit's wheel (no solutions) into OUT")
    b.set_defaults(func=_cmd_build)

    n = sub.add_parser("nbgrader", help="instructor tools")
    nsub = n.add_subparsers(dest="nbgrader_command", required=True)
    ni = nsub.add_parser("init", help="lay out an nbgrader course directory")
    ni.add_argument("course_dir")
    ni.add_argument("--chapters", nargs="*", default=None)
    ni.add_argument("--course-id", default="mechinterp")
    ni.add_argument("--no-hidden-cases", action="store_true",
                    help="grade on the recorded cases only (default: every check also grades fresh cases drawn "
                         "with a seed written into nbgrader_config.py)")
    ni.add_argument("--run-experiments", action="store_true",
                    help="autograde runs the experiment cells too (default: skipped, only graded cells run)")
    ni.set_defaults(func=_cmd_nbgrader)

    z = sub.add_parser("zoo", help="the offline model zoo")
    zsub = z.add_subparsers(dest="zoo_command", required=True)
    zsub.add_parser("list", help="list the shipped models").set_defaults(func=_cmd_zoo)
    zt = zsub.add_parser("train", help="train a zoo model from its recipe (seeded)")
    zt.add_argument("name")
    zt.add_argument("--out", default=None, help="folder to write NAME/ into (default: the installed zoo)")
    zt.add_argument("--cache", default=None, help="download cache for text corpora")
    zt.set_defaults(func=_cmd_zoo)
    zv = zsub.add_parser("verify", help="re-check checksums and the phenomena each model is shipped for")
    zv.add_argument("name", nargs="?")
    zv.set_defaults(func=_cmd_zoo)

    r = sub.add_parser("reproduce", help="rerun the reference experiments; print findings beside the paper's")
    r.add_argument("chapters", nargs="*")
    r.add_argument("--device", default="auto")
    r.set_defaults(func=_cmd_reproduce)
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        return args.func(args)
    except UnknownName as e:  # a mistyped chapter or exercise; any other error keeps its traceback
        print(f"error: {e.args[0]}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
