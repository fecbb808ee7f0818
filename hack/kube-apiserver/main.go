// Command kube-apiserver is the upstream kube-apiserver, built from the Go module proxy for the test
// suite (tests/peers). k8s.io/kubernetes cannot be `go install`ed directly because it requires its
// staging modules at v0.0.0; this wrapper module pins them (see go.mod) and mirrors
// cmd/kube-apiserver/apiserver.go.
package main

import (
	"os"
	_ "time/tzdata" // CronJob time zones without system tzdata, as upstream

	"k8s.io/component-base/cli"
	_ "k8s.io/component-base/logs/json/register"          // JSON log format, as upstream
	_ "k8s.io/component-base/metrics/prometheus/clientgo" // client-go metrics, as upstream
	_ "k8s.io/component-base/metrics/prometheus/version"  // version metric, as upstream
	"k8s.io/kubernetes/cmd/kube-apiserver/app"
)

func main() {
	command := app.NewAPIServerCommand()
	code := cli.Run(command)
	os.Exit(code)
}
