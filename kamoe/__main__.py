from kamoe.cli import main

raise SystemExit(main())
