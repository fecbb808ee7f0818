// Command kube-node is the upstream kube-controller-manager, kube-scheduler, kubelet and kube-proxy in
// one multi-call binary, built from the Go module proxy for the test suite's single-node cluster
// (tests/peers/cluster.py). One binary because the four share most of their dependencies: they compile
// once, and the cache holds one file instead of four. It dispatches on the name it is called by
// (a symlink such as kubelet -> kube-node) or, failing that, on its first argument
// (`kube-node kubelet --config ...`). Each branch mirrors upstream's cmd/<component>/<component>.go.
package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	_ "time/tzdata" // CronJob time zones without system tzdata, as upstream's controller-manager

	"github.com/spf13/cobra"
	"k8s.io/component-base/cli"
	_ "k8s.io/component-base/logs/json/register"          // JSON log format, as upstream
	_ "k8s.io/component-base/metrics/prometheus/clientgo" // client-go metrics, as upstream
	_ "k8s.io/component-base/metrics/prometheus/version"  // version metric, as upstream
	controllermanager "k8s.io/kubernetes/cmd/kube-controller-manager/app"
	proxy "k8s.io/kubernetes/cmd/kube-proxy/app"
	scheduler "k8s.io/kubernetes/cmd/kube-scheduler/app"
	kubelet "k8s.io/kubernetes/cmd/kubelet/app"
)

var commands = map[string]func() *cobra.Command{
	"kube-controller-manager": controllermanager.NewControllerManagerCommand,
	"kube-scheduler":          func() *cobra.Command { return scheduler.NewSchedulerCommand() },
	"kubelet":                 func() *cobra.Command { return kubelet.NewKubeletCommand(context.Background()) },
	"kube-proxy":              proxy.NewProxyCommand,
}

func main() {
	name := filepath.Base(os.Args[0])
	newCommand, ok := commands[name]
	if !ok && len(os.Args) > 1 {
		name = os.Args[1]
		newCommand, ok = commands[name]
		// The component's own flag parsing must not see its name as a positional argument.
		os.Args = append([]string{name}, os.Args[2:]...)
	}
	if !ok {
		names := make([]string, 0, len(commands))
		for known := range commands {
			names = append(names, known)
		}
		fmt.Fprintf(os.Stderr, "usage: kube-node {%s} [flags]\n", strings.Join(names, "|"))
		os.Exit(2)
	}
	os.Exit(cli.Run(newCommand()))
}
