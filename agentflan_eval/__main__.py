from agentflan_eval.cli import main

raise SystemExit(main())
