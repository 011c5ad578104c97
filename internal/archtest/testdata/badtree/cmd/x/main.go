package main

import _ "example.com/fix/devstack"

func main() {}
