################################################################################
# Certificate bucket: client.pem, client-key.pem and ca-cert.pem under
# certificate_prefix. Private, TLS-only, SSE-KMS, versioned (a rotation can be
# rolled back by restoring the previous version).
################################################################################

resource "aws_s3_bucket" "certificates" {
  #checkov:skip=CKV_AWS_144:Three small files that the operator re-syncs; cross-region replication would copy the private key to a second region for no gain.
  #checkov:skip=CKV2_AWS_62:The operator polls the prefix (ETags) every tick; nothing consumes S3 event notifications.
  bucket = local.certificate_bucket_name
  # False unless force_destroy: destroy refuses a bucket that still holds object versions.
  force_destroy = var.force_destroy
}

resource "aws_s3_bucket_ownership_controls" "certificates" {
  bucket = aws_s3_bucket.certificates.id

  rule {
    object_ownership = "BucketOwnerEnforced"
  }
}

resource "aws_s3_bucket_public_access_block" "certificates" {
  bucket = aws_s3_bucket.certificates.id

  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true
}

resource "aws_s3_bucket_versioning" "certificates" {
  bucket = aws_s3_bucket.certificates.id

  versioning_configuration {
    status = "Enabled"
  }
}

resource "aws_s3_bucket_server_side_encryption_configuration" "certificates" {
  bucket = aws_s3_bucket.certificates.id

  rule {
    apply_server_side_encryption_by_default {
      sse_algorithm     = "aws:kms"
      kms_master_key_id = aws_kms_key.certificates.arn
    }
    bucket_key_enabled = true
  }
}

resource "aws_s3_bucket_lifecycle_configuration" "certificates" {
  bucket = aws_s3_bucket.certificates.id

  # Versioning must be on before noncurrent-version rules mean anything.
  depends_on = [aws_s3_bucket_versioning.certificates]

  rule {
    id     = "expire-replaced-certificates"
    status = "Enabled"

    filter {}

    noncurrent_version_expiration {
      noncurrent_days = var.certificate_noncurrent_version_days
    }

    abort_incomplete_multipart_upload {
      days_after_initiation = 7
    }
  }
}

data "aws_iam_policy_document" "certificates_bucket" {
  statement {
    sid     = "DenyInsecureTransport"
    effect  = "Deny"
    actions = ["s3:*"]
    resources = [
      aws_s3_bucket.certificates.arn,
      "${aws_s3_bucket.certificates.arn}/*",
    ]

    principals {
      type        = "*"
      identifiers = ["*"]
    }

    condition {
      test     = "Bool"
      variable = "aws:SecureTransport"
      values   = ["false"]
    }
  }
}

resource "aws_s3_bucket_policy" "certificates" {
  bucket = aws_s3_bucket.certificates.id
  policy = data.aws_iam_policy_document.certificates_bucket.json

  # A bucket policy cannot be put while the public access block is being created.
  depends_on = [aws_s3_bucket_public_access_block.certificates]
}

resource "aws_s3_bucket_logging" "certificates" {
  count = var.certificate_access_log_bucket == null ? 0 : 1

  bucket        = aws_s3_bucket.certificates.id
  target_bucket = var.certificate_access_log_bucket
  target_prefix = "s3/${local.certificate_bucket_name}/"
}
