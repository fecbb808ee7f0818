// The sandbox ("pause") container of the test cluster's pods: no registry is reachable, so the suite
// builds its own instead of pulling registry.k8s.io/pause.
module dataflow-operator/hack/pause

go 1.26.0
