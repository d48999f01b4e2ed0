from wsauth.cli import main

raise SystemExit(main())
