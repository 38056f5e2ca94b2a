from usersession_operator.cli import main

raise SystemExit(main())
