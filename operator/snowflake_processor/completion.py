"""Shell completion through argcomplete, for the shells and for kubectl.

Loaded only when a shell asks for completions, so the command starts no slower otherwise.
Bash, zsh and fish ask the way argcomplete's ``register-python-argcomplete`` sets up;
kubectl (1.26+) runs ``kubectl_complete-sfp`` with the words after ``kubectl sfp`` and
reads cobra's format: one completion a line (a tab, then its description), then
``:<directive>``.
"""

from __future__ import annotations

import argparse
import io
import os
import shlex
from collections.abc import Sequence
from typing import NoReturn

# cobra's ShellCompDirectiveNoFileComp: argcomplete lists file names itself where a file goes.
NO_FILE_COMPLETION = 4


class _Completed(Exception):
    """argcomplete is done: it ends by calling its exit method, which raises this."""


def _stop(code: int = 0) -> NoReturn:
    raise _Completed(code)


def complete(parser: argparse.ArgumentParser) -> None:
    """Answer the shell that asked (``_ARGCOMPLETE`` set) and exit."""
    import argcomplete

    argcomplete.autocomplete(parser)


def kubectl_completions(parser: argparse.ArgumentParser, words: Sequence[str]) -> list[str]:
    """Completions of the last of ``words`` ('' starts a new word), each "word\\tdescription"."""
    import argcomplete.io
    from argcomplete.finders import CompletionFinder

    *done, current = list(words) or [""]
    line = " ".join(["kubectl-sfp", *(shlex.quote(word) for word in done), current])
    environment = {
        "_ARGCOMPLETE": "1",  # the command is the line's first word
        "COMP_LINE": line,
        "COMP_POINT": str(len(line)),
        "_ARGCOMPLETE_IFS": "\n",
        "_ARGCOMPLETE_DFS": "\t",  # word, tab, description: as cobra writes them
        "_ARGCOMPLETE_SUPPRESS_SPACE": "1",  # kubectl's script adds the space itself
    }
    saved = {name: os.environ.get(name) for name in environment}
    os.environ.update(environment)
    answer = io.StringIO()

    class Finder(CompletionFinder):
        def _init_debug_stream(self) -> None:
            # argcomplete debugs to file descriptor 9, which a shell sets up; kubectl does not
            # (and in this process it may be another file): keep its debug output here.
            argcomplete.io.debug_stream = io.StringIO()

    try:
        Finder()(parser, exit_method=_stop, output_stream=answer)
    except _Completed:
        pass
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
    return [line.rstrip("\t") for line in answer.getvalue().split("\n") if line]


def complete_for_kubectl(parser: argparse.ArgumentParser, words: Sequence[str]) -> int:
    print("\n".join([*kubectl_completions(parser, words), f":{NO_FILE_COMPLETION}"]))
    return 0
