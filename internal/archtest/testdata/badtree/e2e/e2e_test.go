package e2e

import _ "example.com/fix/devstack"
