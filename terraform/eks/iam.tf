################################################################################
# IRSA: one role per chart ServiceAccount, each trusted only by the cluster's OIDC
# provider for exactly system:serviceaccount:<namespace>:<name> (the worker and the
# reconciler in every namespace in local.job_namespaces) with audience sts.amazonaws.com.
################################################################################

data "aws_iam_policy_document" "operator_assume" {
  statement {
    sid     = "OperatorServiceAccount"
    actions = ["sts:AssumeRoleWithWebIdentity"]

    principals {
      type        = "Federated"
      identifiers = [module.eks.oidc_provider_arn]
    }

    condition {
      test     = "StringEquals"
      variable = "${module.eks.oidc_provider}:sub"
      values   = ["system:serviceaccount:${var.operator_namespace}:${var.operator_service_account}"]
    }

    condition {
      test     = "StringEquals"
      variable = "${module.eks.oidc_provider}:aud"
      values   = ["sts.amazonaws.com"]
    }
  }
}

resource "aws_iam_role" "operator" {
  name                 = "${var.name}-operator"
  description          = "IRSA role of the snowflake-processor operator: reads the mTLS certificates from S3"
  assume_role_policy   = data.aws_iam_policy_document.operator_assume.json
  max_session_duration = 3600
}

# Exactly what certsync does: ListObjectsV2 under the prefix, GetObject on the three
# files (HeadObject and versioned reads fall under the same two object actions).
# Decrypting the SSE-KMS objects is granted by the key policy (kms.tf), through S3 only.
data "aws_iam_policy_document" "operator_certificates" {
  statement {
    sid       = "ListCertificatePrefix"
    actions   = ["s3:ListBucket"]
    resources = [aws_s3_bucket.certificates.arn]

    condition {
      test     = "StringLike"
      variable = "s3:prefix"
      values   = ["${var.certificate_prefix}*"]
    }
  }

  statement {
    sid       = "ReadCertificates"
    actions   = ["s3:GetObject", "s3:GetObjectVersion"]
    resources = ["${aws_s3_bucket.certificates.arn}/${var.certificate_prefix}*"]
  }
}

resource "aws_iam_role_policy" "operator_certificates" {
  name   = "read-certificates"
  role   = aws_iam_role.operator.id
  policy = data.aws_iam_policy_document.operator_certificates.json
}

# CronJob mode: each run (`snowflake-processor reconcile-once`) syncs the certificates
# from S3 as the operator does, with the chart's cronjob.serviceAccount in the namespace
# it runs in. Its own role, so CloudTrail tells the two apart and neither trust widens.
data "aws_iam_policy_document" "reconciler_assume" {
  statement {
    sid     = "ReconcilerServiceAccounts"
    actions = ["sts:AssumeRoleWithWebIdentity"]

    principals {
      type        = "Federated"
      identifiers = [module.eks.oidc_provider_arn]
    }

    condition {
      test     = "StringEquals"
      variable = "${module.eks.oidc_provider}:sub"
      values   = [for namespace in local.job_namespaces : "system:serviceaccount:${namespace}:${var.reconciler_service_account}"]
    }

    condition {
      test     = "StringEquals"
      variable = "${module.eks.oidc_provider}:aud"
      values   = ["sts.amazonaws.com"]
    }
  }
}

resource "aws_iam_role" "reconciler" {
  name                 = "${var.name}-reconciler"
  description          = "IRSA role of the snowflake-processor CronJob-mode runs: reads the mTLS certificates from S3"
  assume_role_policy   = data.aws_iam_policy_document.reconciler_assume.json
  max_session_duration = 3600
}

resource "aws_iam_role_policy" "reconciler_certificates" {
  name   = "read-certificates"
  role   = aws_iam_role.reconciler.id
  policy = data.aws_iam_policy_document.operator_certificates.json
}

data "aws_iam_policy_document" "worker_assume" {
  statement {
    sid     = "WorkerServiceAccounts"
    actions = ["sts:AssumeRoleWithWebIdentity"]

    principals {
      type        = "Federated"
      identifiers = [module.eks.oidc_provider_arn]
    }

    condition {
      test     = "StringEquals"
      variable = "${module.eks.oidc_provider}:sub"
      values   = [for namespace in local.job_namespaces : "system:serviceaccount:${namespace}:${var.worker_service_account}"]
    }

    condition {
      test     = "StringEquals"
      variable = "${module.eks.oidc_provider}:aud"
      values   = ["sts.amazonaws.com"]
    }
  }
}

# The worker's identity, not its permissions. With workload identity federation the
# Snowflake driver signs an sts:GetCallerIdentity request with the pod's web-identity
# credentials and Snowflake checks the role ARN in the answer against the service
# user's WORKLOAD_IDENTITY. GetCallerIdentity needs no IAM permission, so this role has
# none: it only has to exist and be assumable by the worker ServiceAccount. The two
# *_exclusive resources below keep it that way: apply removes any inline or managed
# policy someone attaches out of band.
resource "aws_iam_role" "worker" {
  name                 = "${var.name}-worker"
  description          = "IRSA role of the snowflake-processor worker Jobs: Snowflake workload identity only, no AWS permissions"
  assume_role_policy   = data.aws_iam_policy_document.worker_assume.json
  max_session_duration = 3600
}

resource "aws_iam_role_policies_exclusive" "worker_no_inline_policies" {
  role_name    = aws_iam_role.worker.name
  policy_names = []
}

resource "aws_iam_role_policy_attachments_exclusive" "worker_no_managed_policies" {
  role_name   = aws_iam_role.worker.name
  policy_arns = []
}

################################################################################
# Fargate logging: Fluent Bit runs inside each Fargate pod and writes with the pod
# execution role, to a log group created here (retention, KMS). No CreateLogGroup.
################################################################################

data "aws_iam_policy_document" "fargate_logging" {
  statement {
    sid = "WriteFargatePodLogs"
    actions = [
      "logs:CreateLogStream",
      "logs:DescribeLogStreams",
      "logs:PutLogEvents",
    ]
    resources = [
      aws_cloudwatch_log_group.fargate.arn,
      "${aws_cloudwatch_log_group.fargate.arn}:*",
    ]
  }
}

resource "aws_iam_policy" "fargate_logging" {
  name        = "${var.name}-fargate-logging"
  description = "Fluent Bit in the ${var.name} Fargate pods writes to ${local.fargate_log_group_name}"
  policy      = data.aws_iam_policy_document.fargate_logging.json
}
