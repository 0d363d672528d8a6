variable "region" {
  description = "AWS region for the cluster, the certificate bucket and the ECR repositories. The SnowflakeProcessor's spec.certificates.s3.region must name the same region."
  type        = string
  default     = "us-east-1"
}

variable "name" {
  description = "Name of the EKS cluster; also the prefix of the VPC, IAM roles, KMS aliases and log groups."
  type        = string
  default     = "snowflake-processor"

  # The EKS module names the cluster's IAM role with the name_prefix "<name>-cluster-", and
  # IAM allows a name prefix of at most 38 characters: 29 + len("-cluster-") = 38.
  validation {
    condition     = can(regex("^[a-zA-Z][a-zA-Z0-9-]{0,28}$", var.name))
    error_message = "name must start with a letter and hold at most 29 letters, digits or hyphens: the EKS module's cluster IAM role takes the name prefix \"<name>-cluster-\", and IAM limits a name prefix to 38 characters."
  }
}

variable "cluster_version" {
  description = "Kubernetes version of the EKS control plane."
  type        = string
  default     = "1.34"
}

variable "vpc_cidr" {
  description = "CIDR of the new VPC. Private subnets get a /20 each (Fargate pods take one IP each), public subnets (NAT gateways only) a /24 each."
  type        = string
  default     = "10.60.0.0/16"

  validation {
    condition     = can(cidrhost(var.vpc_cidr, 0)) && try(tonumber(split("/", var.vpc_cidr)[1]) <= 16, false)
    error_message = "vpc_cidr must be a valid IPv4 CIDR of /16 or larger."
  }
}

variable "azs" {
  description = "Availability zone names for the subnets (two or three, of var.region). Empty: the region's a, b and c zones, less any where EKS cannot run a control plane."
  type        = list(string)
  default     = []
}

variable "single_nat_gateway" {
  description = "One NAT gateway for all zones instead of one per zone: cheaper, but outbound traffic (Snowflake, the mTLS service, ECR, S3) stops if that zone fails."
  type        = bool
  default     = false
}

variable "cluster_endpoint_public_access" {
  description = "Expose the Kubernetes API on a public endpoint as well as the private one. Off by default: Terraform and kubectl then need a network path into the VPC."
  type        = bool
  default     = false
}

variable "cluster_endpoint_public_access_cidrs" {
  description = "CIDRs allowed to reach the public API endpoint when cluster_endpoint_public_access is true. Must be set then; 0.0.0.0/0 is refused."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for cidr in var.cluster_endpoint_public_access_cidrs : can(cidrhost(cidr, 0)) && cidr != "0.0.0.0/0"])
    error_message = "cluster_endpoint_public_access_cidrs must hold valid CIDRs, and not 0.0.0.0/0."
  }
}

variable "cluster_endpoint_private_access_cidrs" {
  description = "CIDRs besides the VPC's own (a VPN, a peered CI network) allowed to reach the private API endpoint on 443."
  type        = list(string)
  default     = []
}

variable "cluster_admin_principal_arns" {
  description = "IAM principals (roles, users) given cluster-admin through EKS access entries, in addition to the identity that runs terraform apply. Each entry is keyed by its ARN, so removing one leaves the others in place."
  type        = list(string)
  default     = []

  validation {
    condition     = length(distinct(var.cluster_admin_principal_arns)) == length(var.cluster_admin_principal_arns)
    error_message = "cluster_admin_principal_arns must not list an ARN twice."
  }
}

variable "certificate_bucket_name" {
  description = "Name of the S3 bucket created for the mTLS certificates (bucket names are global: change it). Must equal spec.certificates.s3.bucket of the SnowflakeProcessor resources."
  type        = string
  default     = "acme-snowflake-processor-certs"
}

variable "certificate_prefix" {
  description = "Key prefix under which client.pem, client-key.pem and ca-cert.pem live; the operator may read only this prefix. Must equal spec.certificates.s3.prefix."
  type        = string
  default     = "prod/"

  validation {
    condition     = can(regex("^[A-Za-z0-9!_.'()-]+(/[A-Za-z0-9!_.'()-]+)*/$", var.certificate_prefix))
    error_message = "certificate_prefix must be a non-empty key prefix ending in '/', without '*', '?' or a leading '/'."
  }
}

variable "certificate_noncurrent_version_days" {
  description = "Days a replaced or deleted certificate object version is kept before it expires (rollback window after a rotation)."
  type        = number
  default     = 90
}

variable "certificate_access_log_bucket" {
  description = "Existing bucket that receives S3 server access logs for the certificate bucket; null leaves access logging off (CloudTrail data events are the alternative)."
  type        = string
  default     = null
}

variable "operator_namespace" {
  description = "Namespace of the operator: the Helm release namespace. Its pods run on the `operator` Fargate profile."
  type        = string
  default     = "snowflake-processor-system"
}

variable "jobs_namespace" {
  description = "Namespace of the SnowflakeProcessor resources and of their worker Jobs. Its labelled pods run on the `jobs` Fargate profile."
  type        = string
  default     = "snowflake-processor"
}

variable "operator_service_account" {
  description = "ServiceAccount of the operator (the chart's). The operator IAM role trusts exactly this account in operator_namespace."
  type        = string
  default     = "snowflake-processor-operator"
}

variable "worker_service_account" {
  description = "ServiceAccount of the worker Jobs (spec.job.serviceAccountName). The worker IAM role trusts exactly this account in jobs_namespace."
  type        = string
  default     = "snowflake-processor-worker"
}

variable "secrets_kms_key_arn" {
  description = "Existing KMS key for envelope encryption of Kubernetes Secrets (the synced client key lives in one). Null creates a dedicated key with rotation on."
  type        = string
  default     = null
}

variable "kms_key_deletion_window_in_days" {
  description = "Waiting period before a KMS key created here is deleted after terraform destroy."
  type        = number
  default     = 30

  validation {
    condition     = var.kms_key_deletion_window_in_days >= 7 && var.kms_key_deletion_window_in_days <= 30
    error_message = "kms_key_deletion_window_in_days must be between 7 and 30."
  }
}

variable "log_retention_days" {
  description = "Retention of the CloudWatch log groups (control plane, Fargate pod logs, VPC flow logs)."
  type        = number
  default     = 365

  validation {
    condition     = contains([1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653], var.log_retention_days)
    error_message = "log_retention_days must be a value CloudWatch Logs accepts (1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, ...)."
  }
}

variable "ecr_keep_images" {
  description = "How many images each ECR repository keeps; older ones expire (untagged ones after 7 days)."
  type        = number
  default     = 50
}

variable "tags" {
  description = "Tags applied to every AWS resource (provider default_tags)."
  type        = map(string)
  default     = {}
}
