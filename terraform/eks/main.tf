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
}

################################################################################
# Network: private subnets for the control plane ENIs and every Fargate pod, public
# subnets only for the NAT gateways that carry their outbound traffic.
################################################################################

module "vpc" {
  #checkov:skip=CKV_TF_1:Registry module pinned to an exact version (the registry has no commit-hash sources); review a version bump like code.
  source  = "terraform-aws-modules/vpc/aws"
  version = "5.21.0"

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

  vpc_id                   = module.vpc.vpc_id
  subnet_ids               = module.vpc.private_subnets
  control_plane_subnet_ids = module.vpc.private_subnets

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
      cidr_blocks = distinct(concat([var.vpc_cidr], var.cluster_endpoint_private_access_cidrs))
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

  authentication_mode                      = "API"
  enable_cluster_creator_admin_permissions = true
  # Keyed by the ARN, not by the list index: removing one principal must not shift the
  # keys of the others (which would destroy and recreate their access entries).
  access_entries = {
    for arn in var.cluster_admin_principal_arns : arn => {
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
    # Fluent Bit in every Fargate pod writes to CloudWatch with the pod execution role.
    iam_role_additional_policies = {
      fargate_logging = aws_iam_policy.fargate_logging.arn
    }
  }

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
}
