################################################################################
# VPC endpoints. Every Fargate pod start pulls its image, and everything a pod sends
# to AWS goes through the NAT gateways (billed per GB) unless an endpoint takes it.
#
# - S3 gateway endpoint (free), whenever Terraform creates the VPC: ECR serves image
#   layers from S3, so most of every pull's bytes skip NAT; the certificates too.
# - vpc_interface_endpoints: ECR api and dkr (the rest of the pull), STS (IRSA's
#   AssumeRoleWithWebIdentity) and CloudWatch Logs (Fargate's Fluent Bit), each in every
#   private subnet with private DNS, behind a security group that allows 443 from the VPC.
################################################################################

data "aws_vpc_endpoint_service" "s3" {
  service      = "s3"
  service_type = "Gateway"
}

resource "aws_vpc_endpoint" "s3" {
  count = local.create_vpc ? 1 : 0

  vpc_id            = local.vpc_id
  service_name      = data.aws_vpc_endpoint_service.s3.service_name
  vpc_endpoint_type = "Gateway"
  route_table_ids   = module.vpc.private_route_table_ids

  tags = { Name = "${var.name}-s3" }
}

locals {
  interface_endpoint_services = var.vpc_interface_endpoints ? toset(["ecr.api", "ecr.dkr", "sts", "logs"]) : toset([])
}

data "aws_vpc_endpoint_service" "interface" {
  for_each = local.interface_endpoint_services

  service      = each.value
  service_type = "Interface"
}

resource "aws_security_group" "vpc_endpoints" {
  count = var.vpc_interface_endpoints ? 1 : 0

  name        = "${var.name}-vpc-endpoints"
  description = "Interface VPC endpoints of ${var.name}: HTTPS from the VPC"
  vpc_id      = local.vpc_id

  ingress {
    description = "HTTPS from the VPC (Fargate pods and their image pulls)"
    protocol    = "tcp"
    from_port   = 443
    to_port     = 443
    cidr_blocks = local.vpc_cidr_blocks
  }

  # No egress rule: an endpoint only answers connections made to it.

  tags = { Name = "${var.name}-vpc-endpoints" }
}

resource "aws_vpc_endpoint" "interface" {
  for_each = data.aws_vpc_endpoint_service.interface

  vpc_id              = local.vpc_id
  service_name        = each.value.service_name
  vpc_endpoint_type   = "Interface"
  subnet_ids          = local.private_subnet_ids
  security_group_ids  = [aws_security_group.vpc_endpoints[0].id]
  private_dns_enabled = true

  tags = { Name = "${var.name}-${each.key}" }
}

################################################################################
# The egress addresses of an existing VPC (output nat_public_ips).
################################################################################

data "aws_nat_gateways" "existing" {
  count = local.create_vpc ? 0 : 1

  vpc_id = var.vpc_id

  filter {
    name   = "state"
    values = ["available"]
  }
}

data "aws_nat_gateway" "existing" {
  for_each = toset(local.create_vpc ? [] : data.aws_nat_gateways.existing[0].ids)

  id = each.value
}
