output "cluster_name" {
  description = "EKS cluster name: aws eks update-kubeconfig --name <this> --region <region>."
  value       = module.eks.cluster_name
}

output "cluster_endpoint" {
  description = "Kubernetes API endpoint (private unless cluster_endpoint_public_access)."
  value       = module.eks.cluster_endpoint

  precondition {
    condition     = !var.cluster_endpoint_public_access || length(var.cluster_endpoint_public_access_cidrs) > 0
    error_message = "cluster_endpoint_public_access = true needs cluster_endpoint_public_access_cidrs: EKS would otherwise open the API to 0.0.0.0/0."
  }
}

output "region" {
  description = "AWS region of everything above: spec.certificates.s3.region of the SnowflakeProcessor resources."
  value       = var.region
}

output "operator_role_arn" {
  description = "IRSA role of the operator (chart value operator.serviceAccount.roleArn)."
  value       = aws_iam_role.operator.arn
}

output "worker_role_arn" {
  description = "IRSA role of the worker Jobs (chart value worker.serviceAccount.roleArn); the ARN the Snowflake service user's WORKLOAD_IDENTITY names."
  value       = aws_iam_role.worker.arn
}

output "reconciler_role_arn" {
  description = "IRSA role of the CronJob-mode runs (chart value cronjob.serviceAccount.roleArn): reads the certificates like the operator role."
  value       = aws_iam_role.reconciler.arn
}

output "operator_image_repository" {
  description = "ECR repository of the operator image (chart value operator.image.repository)."
  value       = aws_ecr_repository.this["operator"].repository_url
}

output "worker_image_repository" {
  description = "ECR repository of the worker image (chart value worker.image.repository)."
  value       = aws_ecr_repository.this["worker"].repository_url
}

output "certificate_bucket" {
  description = "Bucket for client.pem, client-key.pem and ca-cert.pem (spec.certificates.s3.bucket)."
  value       = aws_s3_bucket.certificates.id
}

output "certificate_prefix" {
  description = "Key prefix of the certificates (spec.certificates.s3.prefix)."
  value       = var.certificate_prefix
}

output "fargate_log_group" {
  description = "CloudWatch log group of every Fargate pod's stdout and stderr."
  value       = aws_cloudwatch_log_group.fargate.name
}

output "helm_values" {
  description = "Chart values from this stack for either mode, as YAML: terraform output -raw helm_values > values.yaml. The IRSA role of each chart ServiceAccount (operator, worker, and cronjob for mode cronjob) and both image repositories; a CronJob-mode release adds mode, jobs.namespace and its processors."
  value = yamlencode({
    operator = {
      serviceAccount = { roleArn = aws_iam_role.operator.arn }
      image          = { repository = aws_ecr_repository.this["operator"].repository_url }
    }
    worker = {
      serviceAccount = { roleArn = aws_iam_role.worker.arn }
      image          = { repository = aws_ecr_repository.this["worker"].repository_url }
    }
    cronjob = {
      serviceAccount = { roleArn = aws_iam_role.reconciler.arn }
    }
  })
}

output "job_namespaces" {
  description = "Namespaces where worker Jobs may run: jobs_namespace and cronjob_namespaces. Each has a Fargate profile, and the worker and reconciler roles trust the chart's service accounts there."
  value       = local.job_namespaces
}

output "vpc_id" {
  description = "The VPC of the cluster: the one created here, or vpc_id."
  value       = local.vpc_id

  precondition {
    condition     = var.vpc_id != null || length(var.private_subnet_ids) == 0
    error_message = "private_subnet_ids is only used with vpc_id: set vpc_id too, or leave private_subnet_ids empty to create a VPC."
  }
}

output "private_subnet_ids" {
  description = "Subnets of the control plane ENIs and of every Fargate pod."
  value       = local.private_subnet_ids
}

output "nat_public_ips" {
  description = "Public IPv4 addresses the pods' outbound traffic leaves from (the NAT gateways): what a Snowflake network policy (ALLOWED_IP_LIST) and the mTLS service's allow-list must admit. With vpc_id: the addresses of the VPC's available NAT gateways, empty when it leaves another way."
  value       = local.create_vpc ? module.vpc.nat_public_ips : [for gateway in data.aws_nat_gateway.existing : gateway.public_ip]
}
