// Package archtest enforces cellgrid's layering and package docs with tests,
// as tailscale does with tstest/deptest and pkgdoc_test.go. It is test
// machinery: nothing outside its own tests imports it.
//
// Load reads the import graph of a module tree with go/parser (imports and
// package docs only, no type checking, no build tags), Check applies the
// rules below and returns every violation:
//
//   - internal-imports-domain: a package under internal/ imports a domain
//     package (cell, global, dgs, relay, jobs, topology, client, devstack,
//     cmd, e2e), also from its tests: internal/ is plumbing under the
//     domains, never above them;
//   - dgs-imports-cell-or-jobs: a package under dgs/ imports cell/ or jobs/
//     (the DGS knows its cell only through NATS and proto/);
//   - client-imports-server: a non-test file under client/ imports a server
//     package (cell, global, relay, dgs, jobs, topology, devstack, cmd, e2e)
//     or internal/; the client SDK builds in a game's own module;
//   - proto-imports-beyond-allowlist: a non-test file under proto/ imports
//     anything but the standard library, proto/ itself and
//     ProtoAllowedImports;
//   - devstack-imported: a package other than cmd/... and e2e/... imports
//     devstack, the composition root, also from tests;
//   - public-sdk-depends-on-internal: dgs/sdk or client/... reaches
//     internal/ through any chain of non-test imports in the module;
//   - missing-package-doc: a package with non-test Go files, other than a
//     main package, has no package doc comment.
//
// The tests run Check on the repository (it must be clean) and on a fixture
// tree in testdata/ that breaks every rule (each violation must be
// reported), and they check `go list -deps ./dgs/sdk ./client` with the go
// command itself.
package archtest
