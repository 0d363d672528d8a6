################################################################################
# KMS keys: Kubernetes Secrets, CloudWatch log groups, the certificate bucket.
# Each key policy lets the account's IAM policies grant use of the key (the usual
# root statement) and adds only what a service principal needs on top.
################################################################################

data "aws_iam_policy_document" "account_managed_key" {
  #checkov:skip=CKV_AWS_109:Key policy: "*" is this key alone, and the root statement is what lets IAM policies manage it.
  #checkov:skip=CKV_AWS_111:Key policy: "*" is this key alone, and the root statement is what lets IAM policies manage it.
  #checkov:skip=CKV_AWS_356:Key policy: "*" is this key alone, and the root statement is what lets IAM policies manage it.
  statement {
    sid       = "AccountIAMPolicies"
    actions   = ["kms:*"]
    resources = ["*"]

    principals {
      type        = "AWS"
      identifiers = ["arn:${local.partition}:iam::${local.account_id}:root"]
    }
  }
}

locals {
  secrets_kms_key_arn = var.secrets_kms_key_arn != null ? var.secrets_kms_key_arn : one(aws_kms_key.secrets[*].arn)
}

# The EKS module gives the cluster role kms:Encrypt/Decrypt/DescribeKey on this key
# through an IAM policy (attach_cluster_encryption_policy).
resource "aws_kms_key" "secrets" {
  count = var.secrets_kms_key_arn == null ? 1 : 0

  description             = "${var.name}: envelope encryption of Kubernetes Secrets"
  enable_key_rotation     = true
  deletion_window_in_days = var.kms_key_deletion_window_in_days
  policy                  = data.aws_iam_policy_document.account_managed_key.json
}

resource "aws_kms_alias" "secrets" {
  count = var.secrets_kms_key_arn == null ? 1 : 0

  name          = "alias/${var.name}-eks-secrets"
  target_key_id = aws_kms_key.secrets[0].key_id
}

data "aws_iam_policy_document" "logs_key" {
  source_policy_documents = [data.aws_iam_policy_document.account_managed_key.json]

  statement {
    sid = "CloudWatchLogsOfThisAccount"
    actions = [
      "kms:Encrypt*",
      "kms:Decrypt*",
      "kms:ReEncrypt*",
      "kms:GenerateDataKey*",
      "kms:Describe*",
    ]
    resources = ["*"]

    principals {
      type        = "Service"
      identifiers = ["logs.${var.region}.amazonaws.com"]
    }

    condition {
      test     = "ArnLike"
      variable = "kms:EncryptionContext:aws:logs:arn"
      values   = ["arn:${local.partition}:logs:${var.region}:${local.account_id}:log-group:*"]
    }
  }
}

resource "aws_kms_key" "logs" {
  description             = "${var.name}: CloudWatch log groups (control plane, Fargate pods, VPC flow logs)"
  enable_key_rotation     = true
  deletion_window_in_days = var.kms_key_deletion_window_in_days
  policy                  = data.aws_iam_policy_document.logs_key.json
}

resource "aws_kms_alias" "logs" {
  name          = "alias/${var.name}-logs"
  target_key_id = aws_kms_key.logs.key_id
}

# The operator and the CronJob-mode runs decrypt the certificates through S3 only: the
# key policy grants them kms:Decrypt when S3 asks on their behalf for this bucket, so
# their IAM policies stay S3-only (iam.tf).
data "aws_iam_policy_document" "certificates_key" {
  source_policy_documents = [data.aws_iam_policy_document.account_managed_key.json]

  statement {
    sid       = "CertificateReadersThroughS3"
    actions   = ["kms:Decrypt"]
    resources = ["*"]

    principals {
      type        = "AWS"
      identifiers = [aws_iam_role.operator.arn, aws_iam_role.reconciler.arn]
    }

    condition {
      test     = "StringEquals"
      variable = "kms:ViaService"
      values   = ["s3.${var.region}.amazonaws.com"]
    }

    # With S3 Bucket Keys the context is the bucket's ARN; without them, the object's.
    condition {
      test     = "StringLike"
      variable = "kms:EncryptionContext:aws:s3:arn"
      values = [
        aws_s3_bucket.certificates.arn,
        "${aws_s3_bucket.certificates.arn}/${var.certificate_prefix}*",
      ]
    }
  }
}

resource "aws_kms_key" "certificates" {
  description             = "${var.name}: SSE-KMS of the mTLS certificate bucket"
  enable_key_rotation     = true
  deletion_window_in_days = var.kms_key_deletion_window_in_days
  policy                  = data.aws_iam_policy_document.certificates_key.json
}

resource "aws_kms_alias" "certificates" {
  name          = "alias/${var.name}-certificates"
  target_key_id = aws_kms_key.certificates.key_id
}
