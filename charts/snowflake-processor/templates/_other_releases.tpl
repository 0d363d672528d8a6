{{- /*
More than one operator-mode release in a cluster works when each serves namespaces of its
own and one of them owns the CRD (which is cluster-wide): a second release that would
install the CRD again, or poll resources another release's operator already polls, is
refused here with the values to set, instead of Helm's ownership error or two operators
polling one resource. lookup asks the cluster, so this holds for `helm install/upgrade`
and `--dry-run=server`; `helm template` offline sees no other release.
*/ -}}

{{/* The namespaces an operator Deployment serves: its --namespace arguments, or ["*"]
(every namespace) without any. */}}
{{- define "snowflake-processor.servedBy" -}}
{{- $served := list -}}
{{- range $container := dig "spec" "template" "spec" "containers" (list) . -}}
{{- if eq $container.name "operator" -}}
{{- $args := $container.args | default list -}}
{{- range $index, $arg := $args -}}
{{- if and (eq $arg "--namespace") (lt (add1 $index) (len $args)) -}}
{{- $served = append $served (index $args (add1 $index)) -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- ternary (list "*") $served (empty $served) | toJson -}}
{{- end -}}

{{- define "snowflake-processor.checkOtherReleases" -}}
{{- if eq .Values.mode "operator" -}}
{{- $crdName := "snowflakeprocessors.snowflake-processor.dev" -}}
{{- $crd := lookup "apiextensions.k8s.io/v1" "CustomResourceDefinition" "" $crdName -}}
{{- if and .Values.crds.install $crd -}}
{{- $owner := dig "metadata" "annotations" "meta.helm.sh/release-name" "" $crd -}}
{{- $ownerNamespace := dig "metadata" "annotations" "meta.helm.sh/release-namespace" "" $crd -}}
{{- if and $owner (not (include "snowflake-processor.ownedByRelease" (list . $crd))) -}}
{{- fail (printf "crds.install: the CRD %s belongs to release %s in namespace %s, which installs and upgrades it; install this release with crds.install=false (docs/install.md, \"More than one release\")" $crdName $owner $ownerNamespace) -}}
{{- end -}}
{{- end -}}
{{- $ours := ternary (list "*") (include "snowflake-processor.watchNamespaces" . | fromJsonArray) (eq .Values.rbac.scope "cluster") -}}
{{- $deployments := lookup "apps/v1" "Deployment" "" "" -}}
{{- range $deployment := dig "items" (list) $deployments -}}
{{- $other := dig "metadata" "annotations" "meta.helm.sh/release-name" "" $deployment -}}
{{- if and $other (not (include "snowflake-processor.ownedByRelease" (list $ $deployment))) -}}
{{- $isOperator := false -}}
{{- range $container := dig "spec" "template" "spec" "containers" (list) $deployment -}}
{{- if and (eq $container.name "operator") (eq (first ($container.args | default (list ""))) "operator") -}}
{{- $isOperator = true -}}
{{- end -}}
{{- end -}}
{{- if $isOperator -}}
{{- $theirs := include "snowflake-processor.servedBy" $deployment | fromJsonArray -}}
{{- $shared := list -}}
{{- if or (has "*" $ours) (has "*" $theirs) -}}
{{- $shared = ternary $theirs $ours (has "*" $ours) -}}
{{- else -}}
{{- range $namespace := $ours -}}
{{- if has $namespace $theirs -}}
{{- $shared = append $shared $namespace -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- if $shared -}}
{{- $where := ternary "every namespace" (join ", " $shared) (has "*" $shared) -}}
{{- fail (printf "another release already serves these SnowflakeProcessors: release %s (namespace %s, Deployment %s) serves %s, and this release would too; two operators would both poll those resources. Give each release namespaces of its own (rbac.scope=namespace with watchNamespaces or jobs.namespace) and crds.install=false for all but one (docs/install.md, \"More than one release\")" $other $deployment.metadata.namespace $deployment.metadata.name $where) -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- end -}}
