from usersession_operator.sessionapi.cli import main

raise SystemExit(main())
