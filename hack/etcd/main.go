// Command etcd is the upstream etcd server, built from the Go module proxy for the test suite
// (tests/peers); it mirrors etcd's own main package, which lives in a module that is not meant to be
// `go install`ed with a version.
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() {
	etcdmain.Main(os.Args)
}
