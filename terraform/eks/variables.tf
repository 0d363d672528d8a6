variable "region" {
  description = "AWS region for the cluster, the certificate bucket and the ECR repositories. The SnowflakeProcessor's spec.certificates.s3.region must name the same region."
  type        = string
  default     = "us-east-1"
}

variable "name" {
  description = "Name of the EKS cluster, and the prefix of every name that must be unique in the account: the VPC, IAM roles and policies, ECR repositories, the default certificate bucket, KMS aliases, log groups. Two stacks in one account need two names."
  type        = string
  default     = "snowflake-processor"

  # The EKS module names the cluster's IAM role with the name_prefix "<name>-cluster-" and the
  # Fargate pod execution roles "<name>-fargate-"; IAM allows a name prefix of at most 38
  # characters: 29 + len("-cluster-") = 38. Lower case: ECR repository and S3 bucket names
  # take no capitals.
  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{0,28}$", var.name))
    error_message = "name must start with a lower-case letter and hold at most 29 lower-case letters, digits or hyphens: the EKS module's IAM roles take the name prefix \"<name>-cluster-\", IAM limits a name prefix to 38 characters, and ECR repository and S3 bucket names allow no capitals."
  }

  # ECR repository names allow no "--" and no trailing "-" before the "-operator" suffix.
  validation {
    condition     = !strcontains(var.name, "--") && !endswith(var.name, "-")
    error_message = "name must not end with a hyphen or hold two hyphens in a row: the ECR repositories are named \"<name>-operator\" and \"<name>-worker\", and ECR refuses such names."
  }
}

variable "cluster_version" {
  description = "Kubernetes version of the EKS control plane."
  type        = string
  default     = "1.34"
}

variable "vpc_id" {
  description = "An existing VPC to use instead of creating one. Null (the default) creates a VPC with NAT gateways and flow logs; set, Terraform creates no VPC, subnets, NAT gateways nor S3 gateway endpoint, and private_subnet_ids must name its private subnets."
  type        = string
  default     = null

  validation {
    condition     = var.vpc_id == null || can(regex("^vpc-[0-9a-f]{8,17}$", var.vpc_id))
    error_message = "vpc_id must be a VPC ID (vpc-...) or null."
  }
}

variable "private_subnet_ids" {
  description = "With vpc_id: the private subnets (two or more, in different availability zones) for the control plane and every Fargate pod. Fargate gives pods no public IP, so their route to the internet (Snowflake, the mTLS service, ECR) must be a NAT gateway or another egress. Must be empty without vpc_id."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for id in var.private_subnet_ids : can(regex("^subnet-[0-9a-f]{8,17}$", id))])
    error_message = "private_subnet_ids must hold subnet IDs (subnet-...)."
  }
}

variable "vpc_interface_endpoints" {
  description = "Create interface VPC endpoints for ECR (api and dkr), STS and CloudWatch Logs in the private subnets, with private DNS and a security group that allows 443 from the VPC: image pulls, IRSA token exchanges and Fargate's logs then stay off the NAT gateways. Off by default: four endpoints cost about $0.01 per hour per zone each (about $88 a month in three zones), more than the NAT data charge they save below roughly 2.5 TB a month. The free S3 gateway endpoint, which carries the image layers, is created with the VPC either way."
  type        = bool
  default     = false
}

variable "vpc_cidr" {
  description = "CIDR of the new VPC (ignored with vpc_id). Private subnets get a /20 each (Fargate pods take one IP each), public subnets (NAT gateways only) a /24 each."
  type        = string
  default     = "10.60.0.0/16"

  validation {
    condition     = can(cidrhost(var.vpc_cidr, 0)) && try(tonumber(split("/", var.vpc_cidr)[1]) <= 16, false)
    error_message = "vpc_cidr must be a valid IPv4 CIDR of /16 or larger."
  }
}

variable "azs" {
  description = "Availability zone names for the subnets of the new VPC (two or three, of var.region; ignored with vpc_id). Empty: the region's a, b and c zones, less any where EKS cannot run a control plane."
  type        = list(string)
  default     = []
}

variable "single_nat_gateway" {
  description = "New VPC only: one NAT gateway for all zones instead of one per zone: cheaper, but outbound traffic (Snowflake, the mTLS service, ECR, S3) stops if that zone fails."
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
  description = "IAM roles and users given cluster-admin through EKS access entries. The identity that runs terraform apply is added whether or not it is listed (listing it is harmless); list every identity that will run apply (CI roles, administrators), or the next apply by another one removes its access. Each entry is keyed by its ARN, so removing one leaves the others in place."
  type        = list(string)
  default     = []

  validation {
    condition     = length(distinct(var.cluster_admin_principal_arns)) == length(var.cluster_admin_principal_arns)
    error_message = "cluster_admin_principal_arns must not list an ARN twice."
  }
}

variable "certificate_bucket_name" {
  description = "Name of the S3 bucket created for the mTLS certificates. Null (the default): \"<name>-certificates-<account ID>\", unique to this stack. Must equal spec.certificates.s3.bucket of the SnowflakeProcessor resources (output certificate_bucket)."
  type        = string
  default     = null

  validation {
    condition     = var.certificate_bucket_name == null || can(regex("^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$", var.certificate_bucket_name))
    error_message = "certificate_bucket_name must be a valid S3 bucket name (3-63 lower-case letters, digits, dots or hyphens) or null."
  }
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

variable "cronjob_namespaces" {
  description = "Namespaces where a CronJob-mode release of the chart runs (mode cronjob, its jobs.namespace), besides jobs_namespace. Each gets a namespace (restricted Pod Security Standard), a Fargate profile for the labelled runs and Jobs, and the reconciler and worker IAM roles trust its two service accounts. jobs_namespace needs no entry: its profile and trusts exist already. A cluster holds 10 Fargate profiles by default (a quota), 3 of them used here."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for ns in var.cronjob_namespaces : can(regex("^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$", ns))]) && length(distinct(var.cronjob_namespaces)) == length(var.cronjob_namespaces)
    error_message = "cronjob_namespaces must hold distinct Kubernetes namespace names (DNS labels: lower-case letters, digits, hyphens, at most 63)."
  }
}

variable "operator_service_account" {
  description = "ServiceAccount of the operator (the chart's). The operator IAM role trusts exactly this account in operator_namespace."
  type        = string
  default     = "snowflake-processor-operator"
}

variable "worker_service_account" {
  description = "ServiceAccount of the worker Jobs (spec.job.serviceAccountName). The worker IAM role trusts exactly this account in jobs_namespace and in each of cronjob_namespaces."
  type        = string
  default     = "snowflake-processor-worker"
}

variable "reconciler_service_account" {
  description = "ServiceAccount of the CronJob-mode runs (the chart's cronjob.serviceAccount.name). The reconciler IAM role trusts exactly this account in jobs_namespace and in each of cronjob_namespaces."
  type        = string
  default     = "snowflake-processor-reconciler"
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

variable "force_destroy" {
  description = "Let terraform destroy delete the ECR repositories with their images and the certificate bucket with every object version. False (the default) makes destroy fail on a non-empty repository or bucket; set it with an apply before destroying (README, \"Tear down\")."
  type        = bool
  default     = false
}

variable "tags" {
  description = "Tags applied to every AWS resource (provider default_tags)."
  type        = map(string)
  default     = {}
}
