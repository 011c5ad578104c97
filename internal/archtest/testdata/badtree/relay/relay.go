// Package relay is clean; its test breaks devstack-imported.
package relay
