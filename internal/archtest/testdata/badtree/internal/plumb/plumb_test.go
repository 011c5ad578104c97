package plumb

import _ "example.com/fix/global"
