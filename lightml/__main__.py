import sys

from lightml.cli.main import main

sys.exit(main())
