"""The dialogue suite's pass rate: plays every conversation of tests/conversations/ through a
running stack and writes docs/conversations.md.

It runs tests/test_conversations.py with pytest (the same fixtures: a stack with the trained model,
Redis, the fake Twilio, fresh demo records per conversation) with CONVERSATIONS_REPORT set, so that
every conversation runs (known failures included, no xfail) and the report is written at the end.

    .venv/bin/python scripts/conversations_report.py                          # docs/conversations.md
    .venv/bin/python scripts/conversations_report.py --update-known-failures  # and the xfail list
    .venv/bin/python scripts/conversations_report.py -k nl-refund --out /tmp/r.md   # some of them
    .venv/bin/python scripts/conversations_report.py --transcripts /tmp/t.json      # every turn, as JSON

--update-known-failures rewrites tests/conversations/known_failures.yml from this run (only when
every conversation ran): the failing ones, each with its first failed check.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(ROOT / "docs" / "conversations.md"), help="where the report goes")
    parser.add_argument("--update-known-failures", action="store_true",
                        help="rewrite tests/conversations/known_failures.yml from this run")
    parser.add_argument("-k", default=None, help="only the conversations whose id matches (pytest -k)")
    parser.add_argument("--business-hours", action="store_true",
                        help="run the gateway's clock at a business Monday 10:00 (the verdicts must not change)")
    parser.add_argument("--transcripts", default=None,
                        help="also write every conversation (messages, replies, failures) as JSON here")
    args = parser.parse_args(argv)

    env = {**os.environ, "CONVERSATIONS_REPORT": str(Path(args.out).resolve()), "PYTHONPATH": str(ROOT)}
    env.setdefault("RASA_TELEMETRY_ENABLED", "false")
    if args.business_hours:
        env["CONVERSATIONS_GATEWAY_AT"] = "monday"
    if args.transcripts:
        env["CONVERSATIONS_TRANSCRIPTS"] = str(Path(args.transcripts).resolve())
    if args.update_known_failures and not args.k:
        env["CONVERSATIONS_UPDATE_KNOWN"] = "1"
    command = [sys.executable, "-m", "pytest", "tests/test_conversations.py", "-m", "stack", "-q", "-p",
               "no:cacheprovider", "--timeout=900"]
    if args.k:
        command += ["-k", args.k]
    started = time.monotonic()
    done = subprocess.run(command, cwd=ROOT, env=env)
    seconds = time.monotonic() - started
    out = Path(args.out)
    if out.exists():  # the whole run's time, stack start (model loading) included
        text = out.read_text(encoding="utf-8")
        out.write_text(text.replace("<!-- whole run -->", f"; the whole run, stack start included: {seconds:.0f} s"),
                       encoding="utf-8")
    print(f"\n{seconds:.0f} s; report: {args.out}"
          + ("; known failures: tests/conversations/known_failures.yml" if env.get("CONVERSATIONS_UPDATE_KNOWN") else ""))
    # pytest's exit code says whether conversations failed, which is what the report is about
    return 0 if done.returncode in (0, 1) else done.returncode


if __name__ == "__main__":
    raise SystemExit(main())
