"""The `kme-chat` command: serve, chat, eval, report, bench, edit, memory."""
from __future__ import annotations

import argparse
import functools
import json
import logging
import sys
from pathlib import Path

from .config import WEIGHT_EDITORS, load_settings
from .errors import UserError


def _progress(stage: str, done: int, total: int) -> None:
    print(f"\r{stage}: {done}/{total}", end="\n" if done == total else "", file=sys.stderr, flush=True)


def cmd_chat(args, settings) -> int:
    from .assistant import Assistant

    assistant = Assistant.open(settings)
    question = args.message if args.message is not None else sys.stdin.read()
    shown = ""
    for shown_now in assistant.stream(question):
        print(shown_now[len(shown):], end="", flush=True)
        shown = shown_now
    print()
    return 0


def cmd_serve(args, settings) -> int:
    from app.server import serve

    serve(settings)
    return 0


def cmd_eval(args, settings) -> int:
    from .evaluation.datasets import load_cases
    from .methods import BUILDERS
    from .model import LocalLLM
    from .evaluation.report import Run, run_one, save

    if args.format == "conversations":
        return _eval_conversations(args, settings)
    if args.format == "chains":
        return _eval_chains(args, settings)
    if args.format == "dialogues":
        from .evaluation.dialogues import evaluate_dialogues, load_dialogues

        return _eval_lines(args, settings, load_dialogues, evaluate_dialogues, "kme-dialogues-")
    if args.method not in BUILDERS:
        raise UserError(f"unknown method {args.method!r}; choose one of {', '.join(sorted(BUILDERS))}")
    load_cases(args.data, args.format, 1)  # check the file before the slow model load
    try:
        checkpoints = [int(n) for n in args.checkpoints.split(",")] if args.checkpoints else []
    except ValueError:
        raise UserError("--checkpoints takes edit counts separated by commas, e.g. 1,10,100") from None
    limit = 20 if args.limit is None else args.limit
    run = Run(args.method, args.format, limit, args.mode, checkpoints, args.sample, args.group, args.questions,
              not args.no_single_hops, args.locality, args.offset)
    # scored on the float model, as every earlier run was
    result = run_one(run, LocalLLM.load(settings.with_overrides(keep_float=True)), settings, data_file=Path(args.data))
    print(json.dumps({"metrics": result["metrics"], "timings": result["timings"]}, indent=2))
    if args.json:
        save(result, Path(args.json))
    return 0


def _eval_conversations(args, settings) -> int:
    """The real path, line by line, in a fresh data dir: route, commit on the default route, ask again."""
    from .evaluation.conversations import evaluate_conversations, load_conversations

    evaluate = functools.partial(evaluate_conversations, weights=args.weights)  # --weights: facts as weight edits
    return _eval_lines(args, settings, load_conversations, evaluate, "kme-conversations-")


def _eval_chains(args, settings) -> int:
    """Each line from an empty memory in a fresh data dir: store its facts by correction, ask the
    multi-hop question in the chat and in the multi-hop reader."""
    from .evaluation.chains import evaluate_chains, load_chains

    return _eval_lines(args, settings, load_chains, evaluate_chains, "kme-chains-")


def _eval_lines(args, settings, load, evaluate, prefix: str) -> int:
    """A JSONL eval on the real assistant in a fresh data dir: the lines chosen by --offset, --limit
    and --sample (evenly, in order), each case logged to OUT.cases.jsonl, the result to --json."""
    import tempfile

    from .assistant import Assistant
    from .evaluation.metrics import spread
    from .evaluation.report import save

    rows = load(args.data)[args.offset:]
    rows = rows[:args.limit] if args.limit else rows
    rows = sorted(spread(rows, args.sample), key=rows.index) if args.sample else rows  # evenly, in order
    data_dir = tempfile.mkdtemp(prefix=prefix)
    assistant = Assistant.open(settings.with_overrides(data_dir=data_dir))
    cases_log = Path(args.json).with_suffix(".cases.jsonl") if args.json else None
    if cases_log is not None:
        cases_log.unlink(missing_ok=True)
    result = evaluate(assistant, rows, progress=_progress, cases_log=cases_log)
    result["settings"].update({"data": str(args.data), "offset": args.offset, "sample": args.sample,
                               "data_dir": data_dir})
    print(json.dumps({"metrics": result["metrics"]}, indent=2))
    if args.json:
        save(result, Path(args.json))
    return 0


def cmd_report(args, settings) -> int:
    from .evaluation.report import run_report

    path = run_report(settings, fresh=args.fresh, only=args.only, plan=args.plan)
    print(f"report written to {path}")
    return 0


def cmd_edit(args, settings) -> int:
    from .assistant import Assistant, fact_prompt
    from .edit_log import Edit, EditLog

    if args.edit_command == "list":  # reading the log needs no model
        for e in EditLog(settings.data_path / "edits.sqlite3").all():
            print(f"{e.id}  {e.status:8}  {'+'.join(e.routes):14}  {e.user}  {e.summary}")
        return 0
    assistant = Assistant.open(settings)
    if args.edit_command == "undo":
        edit = assistant.undo(args.id)
        print(f"reverted {edit.id}: {edit.summary}")
        return 0
    prompt = fact_prompt(args.subject or "", args.relation or "")
    edit = Edit(subject=args.subject or "", prompt=prompt, relation=args.relation or "", target_new=args.target or "",
                target_true=args.old or "", routes=[args.method] if args.method else [], user=settings.user)
    edit = assistant.add_edit(edit)
    print(f"saved {edit.id}: {edit.summary} via {'+'.join(edit.routes)}")
    return 0


def cmd_memory(args, settings) -> int:
    from .assistant import Assistant

    counts = Assistant.open(settings).rebuild_memory()
    print("memory rebuilt from the edit log: " + ", ".join(f"{k} {v['restored']}" for k, v in counts.items()))
    return 0


def cmd_users(args, settings) -> int:
    """Accounts for a shared server; the password comes from standard input when it is not a terminal."""
    from .accounts import Accounts

    accounts = Accounts(settings.data_path / "users.sqlite3")
    if args.users_command == "add":
        if sys.stdin.isatty():
            import getpass

            password = getpass.getpass(f"password for {args.name}: ")
            if getpass.getpass("again: ") != password:
                raise UserError("the two passwords differ")
        else:
            password = sys.stdin.readline().rstrip("\r\n")
        user = accounts.add(args.name, password, admin=args.admin)
        print(f"added {user.name}" + (" (admin)" if user.admin else ""))
    elif args.users_command == "list":
        for user in accounts.users():
            print(f"{user.name}{'  admin' if user.admin else ''}")
    elif args.users_command == "remove":
        accounts.remove(args.name)
        print(f"removed {args.name}")
    else:  # key: printed once, only its hash is kept
        print(accounts.new_key(args.name))
    return 0


def cmd_bench(args, settings) -> int:
    from .evaluation.bench import run_benchmarks

    return run_benchmarks(settings, args.which)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="kme-chat", description=__doc__)
    parser.add_argument("--config", help="TOML file with a [kme-chat] table")
    parser.add_argument("--model", dest="model_path", help="local HF directory or .gguf file (default: packaged SmolLM2)")
    parser.add_argument("--quantisation", choices=["int8-dynamic", "bnb-nf4", "none"])
    parser.add_argument("--data-dir", help="where edits, memory and deltas are kept")
    parser.add_argument("-v", "--verbose", action="store_true")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("chat", help="ask one question; prints the streamed answer")
    p.add_argument("message", nargs="?", help="the question (default: read stdin)")
    p.set_defaults(fn=cmd_chat)

    p = sub.add_parser("serve", help="start the web app")
    p.add_argument("--host")
    p.add_argument("--port", type=int)
    p.set_defaults(fn=cmd_serve)

    p = sub.add_parser("eval", help="measure an editing method on a data file")
    p.add_argument("--data", required=True)
    p.add_argument("--format", required=True, choices=["counterfact", "zsre", "mquake", "conversations", "chains", "dialogues"])
    p.add_argument("--method", default="none")
    p.add_argument("--limit", type=int, help="records used (default 20; conversations, chains: every line)")
    p.add_argument("--offset", type=int, default=0)
    p.add_argument("--mode", default="single", choices=["single", "sequential", "batch"])
    p.add_argument("--json", help="write the full result here")
    p.add_argument("--checkpoints", help="sequential: also measure after these edit counts, e.g. 1,10,100")
    p.add_argument("--sample", type=int, help="sequential: measure at most this many edits per checkpoint; "
                   "conversations, chains: run this many lines, spread evenly over the file")
    p.add_argument("--group", type=int, default=1, help="mquake: cases whose edits are stored together; "
                   "sequential: edits applied per step (AlphaEdit's batches of 100)")
    p.add_argument("--questions", type=int, help="mquake: ask only the first N questions of each case")
    p.add_argument("--no-single-hops", action="store_true", help="mquake: skip the single-hop checks")
    p.add_argument("--locality", type=int, default=0, help="mquake: unrelated questions asked as locality probes")
    p.add_argument("--weights", choices=WEIGHT_EDITORS,
                   help="conversations: commit each fact as this weight edit alone (no memory route)")
    p.set_defaults(fn=cmd_eval)

    p = sub.add_parser("report", help="every method on fixed subsets -> bench/results/report.md (+ JSON, plot)")
    p.add_argument("--fresh", action="store_true", help="run again even where a results file exists")
    p.add_argument("--only", nargs="*", help="run only these (run names or methods); the report lists all")
    p.add_argument("--plan", default="main", help="main (every method), lifelong (weight edits to 1 000, "
                   "-> bench/results/lifelong.md) or lifelong_check (soft C and the key gate on fresh records)")
    p.set_defaults(fn=cmd_report)

    p = sub.add_parser("edit", help="add, list or undo edits")
    edit_sub = p.add_subparsers(dest="edit_command", required=True)
    a = edit_sub.add_parser("add", help="store a corrected fact")
    a.add_argument("--subject", required=True)
    a.add_argument("--relation", required=True, help='e.g. "The capital of {} is" ({} = subject)')
    a.add_argument("--target", required=True, help="the new answer")
    a.add_argument("--old", help="the answer it replaces")
    a.add_argument("--method", help="editor to route to (default: ike)")
    edit_sub.add_parser("list", help="every edit with its status")
    u = edit_sub.add_parser("undo", help="revert one edit")
    u.add_argument("id")
    p.set_defaults(fn=cmd_edit)

    p = sub.add_parser("memory", help="memory store maintenance")
    p.add_argument("memory_command", choices=["rebuild"])
    p.set_defaults(fn=cmd_memory)

    p = sub.add_parser("users", help="accounts of a shared server: add, list, remove, key")
    users_sub = p.add_subparsers(dest="users_command", required=True)
    a = users_sub.add_parser("add", help="add a user (password from stdin when it is not a terminal)")
    a.add_argument("name")
    a.add_argument("--admin", action="store_true", help="may make weight edits and see every edit")
    users_sub.add_parser("list", help="every user")
    for name, text in (("remove", "remove a user and their API keys"), ("key", "print a new API key for a user")):
        users_sub.add_parser(name, help=text).add_argument("name")
    p.set_defaults(fn=cmd_users)

    p = sub.add_parser("bench", help="speed and memory benchmarks (results in bench/results/)")
    p.add_argument("which", nargs="*", default=["all"])
    p.set_defaults(fn=cmd_bench)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(message)s")
    try:
        overrides = {"model_path": args.model_path, "quantisation": args.quantisation, "data_dir": args.data_dir,
                     "host": getattr(args, "host", None), "port": getattr(args, "port", None)}
        settings = load_settings(args.config, **overrides)
        return args.fn(args, settings)
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except (ValueError, OSError) as exc:  # bad settings file, unreadable paths
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
