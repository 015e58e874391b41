"""Child process of the SIGKILL test: step the active canary of ``chat`` back and forth forever.

argv: workspace, database URL.  A ``before_commit`` hook sleeps a little so kills often land
inside the step transaction.  Prints ``ready`` once set up.
"""

from __future__ import annotations

import random
import sys
import time

from sqlalchemy import event
from sqlalchemy.orm import Session

from modelsteward.context import open_steward
from modelsteward.rollout import RolloutManager
from modelsteward.settings import Settings


def main() -> None:
    st = open_steward(Settings(home=sys.argv[1], database_url=sys.argv[2]), migrate=False)

    @event.listens_for(Session, "before_commit")
    def _slow(_sess: Session) -> None:
        time.sleep(random.random() * 0.03)

    mgr = RolloutManager(st)
    print("ready", flush=True)
    cycle = [1, 2, 1, 0]
    i = random.randrange(4)
    while True:
        ro = mgr.active("chat")
        target = cycle[i % 4] if cycle[i % 4] != ro.step_index else (ro.step_index + 1) % 3
        mgr.step_to("chat", target, actor="crash-child", reason=f"step {i}", expect_index=ro.step_index)
        i += 1


if __name__ == "__main__":
    main()
