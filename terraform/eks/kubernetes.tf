################################################################################
# Namespaces and Fargate logging. The chart installs into operator_namespace
# (without --create-namespace) and the SnowflakeProcessor resources live in
# jobs_namespace; CronJob-mode releases install into jobs_namespace or one of
# cronjob_namespaces. Terraform owns them all, so the Fargate profiles and IRSA trusts
# name namespaces that exist.
################################################################################

resource "kubernetes_namespace" "operator" {
  metadata {
    name = var.operator_namespace
    labels = {
      "app.kubernetes.io/part-of"          = "snowflake-processor"
      "pod-security.kubernetes.io/enforce" = "restricted"
    }
  }

  depends_on = [module.eks]
}

resource "kubernetes_namespace" "jobs" {
  metadata {
    name = var.jobs_namespace
    labels = {
      "app.kubernetes.io/part-of"          = "snowflake-processor"
      "pod-security.kubernetes.io/enforce" = "restricted"
    }
  }

  depends_on = [module.eks]
}

# CronJob-mode namespaces besides jobs_namespace: the chart installs into each
# (helm install -n <namespace>) without creating it.
resource "kubernetes_namespace" "cronjob" {
  for_each = toset(local.extra_cronjob_namespaces)

  lifecycle {
    precondition {
      condition     = !contains([var.operator_namespace, "default", "kube-system", "kube-public", "kube-node-lease", "aws-observability"], each.value)
      error_message = "cronjob_namespaces must not name operator_namespace or a namespace Kubernetes or EKS owns (default, kube-*, aws-observability): Terraform creates each one."
    }
  }

  metadata {
    name = each.value
    labels = {
      "app.kubernetes.io/part-of"          = "snowflake-processor"
      "pod-security.kubernetes.io/enforce" = "restricted"
    }
  }

  depends_on = [module.eks]
}

resource "aws_cloudwatch_log_group" "fargate" {
  name              = local.fargate_log_group_name
  retention_in_days = var.log_retention_days
  kms_key_id        = aws_kms_key.logs.arn
}

# Fargate's built-in Fluent Bit reads this exact namespace and ConfigMap name.
resource "kubernetes_namespace" "aws_observability" {
  metadata {
    name = "aws-observability"
    labels = {
      "aws-observability" = "enabled"
    }
  }

  depends_on = [module.eks]
}

resource "kubernetes_config_map" "aws_logging" {
  metadata {
    name      = "aws-logging"
    namespace = kubernetes_namespace.aws_observability.metadata[0].name
  }

  data = {
    # Fluent Bit's own logs stay out of CloudWatch.
    flb_log_cw = "false"

    "parsers.conf" = <<-EOT
      [PARSER]
          Name crio
          Format Regex
          Regex ^(?<time>[^ ]+) (?<stream>stdout|stderr) (?<logtag>P|F) (?<log>.*)$
          Time_Key time
          Time_Format %Y-%m-%dT%H:%M:%S.%L%z
    EOT

    "filters.conf" = <<-EOT
      [FILTER]
          Name parser
          Match *
          Key_name log
          Parser crio
      [FILTER]
          Name kubernetes
          Match kube.*
          Merge_Log On
          Keep_Log Off
          Buffer_Size 0
          Kube_Meta_Cache_TTL 300s
    EOT

    # The log group exists (retention, KMS): no auto_create_group, so the pod execution
    # role needs no logs:CreateLogGroup.
    "output.conf" = <<-EOT
      [OUTPUT]
          Name cloudwatch_logs
          Match kube.*
          region ${var.region}
          log_group_name ${aws_cloudwatch_log_group.fargate.name}
          log_stream_prefix fargate-
          auto_create_group false
    EOT
  }
}
