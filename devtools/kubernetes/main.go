// Command kube is a multi-call binary holding the Kubernetes components the
// local test cluster runs (one link instead of six saves build time and disk).
//
// It dispatches on the name it is called by (a symlink such as kube-apiserver)
// or, failing that, on its first argument: `kube kubelet --config=...`.
// `kube cri-cleanup --endpoint=...` removes every pod sandbox (see cri.go).
package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	_ "time/tzdata" // CronJob time zones, as the upstream binaries do

	"github.com/spf13/cobra"
	"go.etcd.io/etcd/server/v3/etcdmain"
	"k8s.io/component-base/cli"
	_ "k8s.io/component-base/logs/json/register"          // JSON log format
	_ "k8s.io/component-base/metrics/prometheus/clientgo" // client-go metrics
	_ "k8s.io/component-base/metrics/prometheus/version"  // version metric
	apiserver "k8s.io/kubernetes/cmd/kube-apiserver/app"
	controllermanager "k8s.io/kubernetes/cmd/kube-controller-manager/app"
	proxy "k8s.io/kubernetes/cmd/kube-proxy/app"
	scheduler "k8s.io/kubernetes/cmd/kube-scheduler/app"
	kubelet "k8s.io/kubernetes/cmd/kubelet/app"
)

// cobraCommands build each Kubernetes component's command lazily, so only the
// one that runs registers its flags.
var cobraCommands = map[string]func() *cobra.Command{
	"kube-apiserver":          apiserver.NewAPIServerCommand,
	"kube-controller-manager": controllermanager.NewControllerManagerCommand,
	"kube-scheduler":          func() *cobra.Command { return scheduler.NewSchedulerCommand() },
	"kube-proxy":              proxy.NewProxyCommand,
	"kubelet":                 func() *cobra.Command { return kubelet.NewKubeletCommand(context.Background()) },
}

// tools are the extra commands that are not Kubernetes components.
var tools = map[string]func([]string) int{
	"etcd": func(args []string) int {
		// etcdmain reads args[1:] as its flags, like os.Args.
		etcdmain.Main(append([]string{"etcd"}, args...))
		return 0
	},
	"cri-cleanup": criCleanup,
}

func names() []string {
	out := []string{}
	for name := range tools {
		out = append(out, name)
	}
	for name := range cobraCommands {
		out = append(out, name)
	}
	sort.Strings(out)
	return out
}

func known(name string) bool {
	_, component := cobraCommands[name]
	_, tool := tools[name]
	return component || tool
}

func run(name string, args []string) int {
	if tool, ok := tools[name]; ok {
		return tool(args)
	}
	cmd := cobraCommands[name]()
	cmd.SetArgs(args)
	return cli.Run(cmd)
}

func main() {
	name := filepath.Base(os.Args[0])
	args := os.Args[1:]
	if !known(name) {
		if len(args) == 0 || !known(args[0]) {
			fmt.Fprintf(os.Stderr, "usage: %s {%s} [flags]\n", name, strings.Join(names(), "|"))
			os.Exit(2)
		}
		name, args = args[0], args[1:]
	}
	os.Exit(run(name, args))
}
