terraform {
  required_version = ">= 1.6"

  required_providers {
    aws = {
      source = "hashicorp/aws"
      # terraform-aws-modules/eks 20.37.x needs >= 5.95 and < 6.0.
      version = "~> 5.95"
    }
    kubernetes = {
      source  = "hashicorp/kubernetes"
      version = "~> 2.36"
    }
  }
}

provider "aws" {
  region = var.region

  default_tags {
    tags = var.tags
  }
}

# The aws-observability, operator and jobs namespaces are created through the cluster's
# API. With the default private-only endpoint, Terraform must run from a network that
# reaches it (inside the VPC, over a VPN or a peered network listed in
# cluster_endpoint_private_access_cidrs). The `aws` CLI must be on PATH for the token.
provider "kubernetes" {
  host                   = module.eks.cluster_endpoint
  cluster_ca_certificate = base64decode(module.eks.cluster_certificate_authority_data)

  exec {
    api_version = "client.authentication.k8s.io/v1beta1"
    command     = "aws"
    args        = ["eks", "get-token", "--cluster-name", module.eks.cluster_name, "--region", var.region]
  }
}
