from loancrm.cli import main

raise SystemExit(main())
