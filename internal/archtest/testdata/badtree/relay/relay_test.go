package relay

import _ "example.com/fix/devstack"
