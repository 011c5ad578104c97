package client

import _ "example.com/fix/cell" // tests may use real servers
