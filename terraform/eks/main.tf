data "aws_caller_identity" "current" {}

data "aws_partition" "current" {}

# A closed set of zones: the ones named in var.azs, or the region's a, b and c. Zones
# where EKS cannot place a control plane (use1-az3, usw1-az2, cac1-az3; their names
# differ per account) are left out.
data "aws_availability_zones" "selected" {
  state            = "available"
  exclude_zone_ids = ["use1-az3", "usw1-az2", "cac1-az3"]

  filter {
    name   = "zone-name"
    values = length(var.azs) > 0 ? var.azs : [for suffix in ["a", "b", "c"] : "${var.region}${suffix}"]
  }

  lifecycle {
    postcondition {
      condition     = length(self.names) >= 2
      error_message = "EKS needs subnets in at least two availability zones; set azs to two or three zones of the region."
    }
  }
}

locals {
  account_id = data.aws_caller_identity.current.account_id
  partition  = data.aws_partition.current.partition
  azs        = data.aws_availability_zones.selected.names

  # The chart's operator pod label (charts/snowflake-processor) and the label the operator
  # puts on every worker Job's pod, whatever the resource says
  # (snowflake_operator.constants.FARGATE_PROFILE_LABEL): a pod that matches no Fargate
  # profile stays Pending forever.
  operator_pod_labels = { "app.kubernetes.io/name" = "snowflake-processor" }
  worker_pod_labels   = { "snowflake-processor.dev/fargate" = "true" }

  fargate_log_group_name = "/aws/eks/${var.name}/fargate"

  # Names unique in the account (IAM, ECR) or globally (S3), all derived from var.name.
  certificate_bucket_name = coalesce(var.certificate_bucket_name, "${var.name}-certificates-${local.account_id}")
  ecr_repositories = {
    operator = "${var.name}-operator"
    worker   = "${var.name}-worker"
  }

  # Where worker Jobs run: jobs_namespace (operator mode, and CronJob mode with the chart's
  # defaults) and every CronJob-mode namespace. The CronJob runs (reconcilers) run in the
  # same namespaces; every namespace but jobs_namespace gets its own Fargate profile.
  job_namespaces           = distinct(concat([var.jobs_namespace], var.cronjob_namespaces))
  extra_cronjob_namespaces = [for namespace in var.cronjob_namespaces : namespace if namespace != var.jobs_namespace]

  # The identity running terraform apply, as the IAM role behind an assumed-role session
  # (what EKS access entries take), joined with the listed admins: one entry per principal,
  # so listing yourself creates no second entry.
  cluster_admin_principal_arns = distinct(concat(var.cluster_admin_principal_arns, [data.aws_iam_session_context.current.issuer_arn]))
}

data "aws_iam_session_context" "current" {
  arn = data.aws_caller_identity.current.arn
}

################################################################################
# Network: a new VPC (below), or an existing one named by vpc_id and private_subnet_ids.
################################################################################

data "aws_vpc" "existing" {
  count = var.vpc_id == null ? 0 : 1

  id = var.vpc_id

  lifecycle {
    precondition {
      condition     = length(var.private_subnet_ids) >= 2
      error_message = "vpc_id needs private_subnet_ids: two or more private subnets in different availability zones for the control plane and the Fargate pods."
    }
  }
}

locals {
  create_vpc         = var.vpc_id == null
  vpc_id             = local.create_vpc ? module.vpc.vpc_id : var.vpc_id
  private_subnet_ids = local.create_vpc ? module.vpc.private_subnets : var.private_subnet_ids
  # Every CIDR of the VPC: the API endpoint and the interface endpoints accept 443 from them.
  vpc_cidr_blocks = local.create_vpc ? [var.vpc_cidr] : [for association in data.aws_vpc.existing[0].cidr_block_associations : association.cidr_block]
}

################################################################################
# The new VPC (unless vpc_id): private subnets for the control plane ENIs and every
# Fargate pod, public subnets only for the NAT gateways that carry their outbound traffic.
################################################################################

module "vpc" {
  #checkov:skip=CKV_TF_1:Registry module pinned to an exact version (the registry has no commit-hash sources); review a version bump like code.
  source  = "terraform-aws-modules/vpc/aws"
  version = "5.21.0"

  create_vpc = local.create_vpc

  name = var.name
  cidr = var.vpc_cidr
  azs  = local.azs

  private_subnets = [for index, _ in local.azs : cidrsubnet(var.vpc_cidr, 4, index)]
  public_subnets  = [for index, _ in local.azs : cidrsubnet(var.vpc_cidr, 8, 48 + index)]

  enable_nat_gateway     = true
  single_nat_gateway     = var.single_nat_gateway
  one_nat_gateway_per_az = !var.single_nat_gateway

  enable_dns_hostnames = true
  enable_dns_support   = true

  map_public_ip_on_launch = false

  # The default security group allows nothing.
  manage_default_security_group  = true
  default_security_group_ingress = []
  default_security_group_egress  = []

  enable_flow_log                                 = true
  create_flow_log_cloudwatch_log_group            = true
  create_flow_log_cloudwatch_iam_role             = true
  flow_log_max_aggregation_interval               = 600
  flow_log_cloudwatch_log_group_retention_in_days = var.log_retention_days
  flow_log_cloudwatch_log_group_kms_key_id        = aws_kms_key.logs.arn
  # IAM names are account-wide: "<name>-flowlog-" keeps two stacks apart (and within the
  # 38-character name prefix IAM allows).
  vpc_flow_log_iam_role_name   = "${var.name}-flowlog"
  vpc_flow_log_iam_policy_name = "${var.name}-flowlog"

  public_subnet_tags  = { "kubernetes.io/role/elb" = "1" }
  private_subnet_tags = { "kubernetes.io/role/internal-elb" = "1" }
}

################################################################################
# EKS: private endpoint, Secrets envelope-encrypted with KMS, control-plane logs,
# IRSA, and nothing but Fargate for compute.
################################################################################

module "eks" {
  #checkov:skip=CKV_TF_1:Registry module pinned to an exact version (the registry has no commit-hash sources); review a version bump like code.
  source  = "terraform-aws-modules/eks/aws"
  version = "20.37.2"

  cluster_name    = var.name
  cluster_version = var.cluster_version

  vpc_id                   = local.vpc_id
  subnet_ids               = local.private_subnet_ids
  control_plane_subnet_ids = local.private_subnet_ids

  cluster_endpoint_private_access      = true
  cluster_endpoint_public_access       = var.cluster_endpoint_public_access
  cluster_endpoint_public_access_cidrs = var.cluster_endpoint_public_access_cidrs

  cluster_security_group_additional_rules = {
    ingress_private_api = {
      description = "Kubernetes API from the VPC and the listed private networks"
      protocol    = "tcp"
      from_port   = 443
      to_port     = 443
      type        = "ingress"
      cidr_blocks = distinct(concat(local.vpc_cidr_blocks, var.cluster_endpoint_private_access_cidrs))
    }
  }
  # Fargate pods use the cluster primary security group; there are no nodes.
  create_node_security_group = false

  create_kms_key = false
  cluster_encryption_config = {
    resources        = ["secrets"]
    provider_key_arn = local.secrets_kms_key_arn
  }

  cluster_enabled_log_types              = ["api", "audit", "authenticator"]
  cloudwatch_log_group_retention_in_days = var.log_retention_days
  cloudwatch_log_group_kms_key_id        = aws_kms_key.logs.arn

  enable_irsa = true

  # The module's own creator entry is off: the applying identity is in
  # local.cluster_admin_principal_arns instead, so listing it in cluster_admin_principal_arns
  # cannot create a second access entry for one principal (EKS refuses that apply).
  authentication_mode                      = "API"
  enable_cluster_creator_admin_permissions = false
  # Keyed by the ARN, not by the list index: removing one principal must not shift the
  # keys of the others (which would destroy and recreate their access entries).
  access_entries = {
    for arn in local.cluster_admin_principal_arns : arn => {
      principal_arn = arn
      policy_associations = {
        admin = {
          policy_arn   = "arn:${local.partition}:eks::aws:cluster-access-policy/AmazonEKSClusterAdminPolicy"
          access_scope = { type = "cluster" }
        }
      }
    }
  }

  # Created after the Fargate profiles (the module orders it), so CoreDNS has somewhere
  # to run; computeType Fargate drops the EC2-only annotation from its Deployment.
  cluster_addons = {
    coredns = {
      most_recent = true
      configuration_values = jsonencode({
        computeType = "Fargate"
      })
    }
  }

  fargate_profile_defaults = {
    # Pod execution roles: name prefix "<name>-fargate-" (IAM names are account-wide).
    iam_role_name = "${var.name}-fargate"
    # Fluent Bit in every Fargate pod writes to CloudWatch with the pod execution role.
    iam_role_additional_policies = {
      fargate_logging = aws_iam_policy.fargate_logging.arn
    }
  }

  # Fixed profiles, then one per CronJob-mode namespace (locals below).
  fargate_profiles = merge(local.fargate_profiles, local.cronjob_fargate_profiles)
}

locals {
  fargate_profiles = {
    operator = {
      name = "operator"
      selectors = [
        {
          namespace = var.operator_namespace
          labels    = local.operator_pod_labels
        }
      ]
    }
    jobs = {
      name = "jobs"
      selectors = [
        {
          namespace = var.jobs_namespace
          labels    = local.worker_pod_labels
        }
      ]
    }
    coredns = {
      name = "coredns"
      selectors = [
        {
          namespace = "kube-system"
          labels    = { "k8s-app" = "kube-dns" }
        }
      ]
    }
  }

  # One profile per CronJob-mode namespace besides jobs_namespace, selecting the label its
  # runs and their worker Jobs carry. Adding a namespace creates a profile and touches no
  # other (a profile's selectors cannot change in place).
  cronjob_fargate_profiles = {
    for namespace in local.extra_cronjob_namespaces : "cronjob-${namespace}" => {
      name = "cronjob-${namespace}"
      selectors = [
        {
          namespace = namespace
          labels    = local.worker_pod_labels
        }
      ]
    }
  }
}
