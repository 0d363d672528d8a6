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
  description = "Chart values from this stack, as YAML: terraform output -raw helm_values > values.yaml"
  value = yamlencode({
    operator = {
      serviceAccount = { roleArn = aws_iam_role.operator.arn }
      image          = { repository = aws_ecr_repository.this["operator"].repository_url }
    }
    worker = {
      serviceAccount = { roleArn = aws_iam_role.worker.arn }
      image          = { repository = aws_ecr_repository.this["worker"].repository_url }
    }
  })
}
