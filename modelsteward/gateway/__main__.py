"""``python -m modelsteward.gateway [--host H] [--port P]``: the gateway alone (see ``serve.main``)."""

from modelsteward.gateway.serve import main

raise SystemExit(main())
