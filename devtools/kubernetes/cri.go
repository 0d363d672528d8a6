package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"time"

	criclient "k8s.io/cri-client/pkg"
)

// criCleanup stops and removes every pod sandbox (and so every container) of a
// CRI runtime. Teardown uses it before stopping containerd: stopping a sandbox
// through CRI is what runs the CNI DEL (veth, IP lease) and unmounts its netns.
// Debian has no crictl, and the CRI client is already linked in for the kubelet.
func criCleanup(args []string) int {
	flags := flag.NewFlagSet("cri-cleanup", flag.ContinueOnError)
	endpoint := flags.String("endpoint", "", "CRI endpoint, e.g. unix:///path/containerd.sock")
	timeout := flags.Duration("timeout", 60*time.Second, "overall time limit")
	if err := flags.Parse(args); err != nil {
		return 2
	}
	if *endpoint == "" {
		fmt.Fprintln(os.Stderr, "cri-cleanup: --endpoint is required")
		return 2
	}
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	runtime, err := criclient.NewRemoteRuntimeService(*endpoint, 10*time.Second, nil, nil)
	if err != nil {
		fmt.Fprintf(os.Stderr, "cri-cleanup: connect: %v\n", err)
		return 1
	}
	sandboxes, err := runtime.ListPodSandbox(ctx, nil)
	if err != nil {
		fmt.Fprintf(os.Stderr, "cri-cleanup: list sandboxes: %v\n", err)
		return 1
	}
	failed := 0
	for _, sandbox := range sandboxes {
		name := sandbox.GetMetadata().GetNamespace() + "/" + sandbox.GetMetadata().GetName()
		if err := runtime.StopPodSandbox(ctx, sandbox.Id); err != nil {
			fmt.Fprintf(os.Stderr, "cri-cleanup: stop %s: %v\n", name, err)
			failed++
			continue
		}
		if err := runtime.RemovePodSandbox(ctx, sandbox.Id); err != nil {
			fmt.Fprintf(os.Stderr, "cri-cleanup: remove %s: %v\n", name, err)
			failed++
			continue
		}
		fmt.Printf("removed pod sandbox %s\n", name)
	}
	if failed > 0 {
		return 1
	}
	return 0
}
