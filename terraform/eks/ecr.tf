################################################################################
# Image repositories: tags are immutable (a Job always runs the image it was given),
# every push is scanned, images are encrypted with KMS.
# Names: local.ecr_repositories (main.tf), "<name>-operator" and "<name>-worker".
################################################################################

resource "aws_ecr_repository" "this" {
  for_each = local.ecr_repositories

  name                 = each.value
  image_tag_mutability = "IMMUTABLE"
  # False unless force_destroy: destroy refuses a repository that still holds images.
  force_delete = var.force_destroy

  image_scanning_configuration {
    scan_on_push = true
  }

  # The AWS managed key (aws/ecr): Fargate's pod execution role pulls without any
  # kms: permission of its own.
  encryption_configuration {
    encryption_type = "KMS"
  }
}

resource "aws_ecr_lifecycle_policy" "this" {
  for_each = aws_ecr_repository.this

  repository = each.value.name
  policy = jsonencode({
    rules = [
      {
        rulePriority = 1
        description  = "Expire untagged images after 7 days"
        selection = {
          tagStatus   = "untagged"
          countType   = "sinceImagePushed"
          countUnit   = "days"
          countNumber = 7
        }
        action = { type = "expire" }
      },
      {
        rulePriority = 2
        description  = "Keep the newest ${var.ecr_keep_images} images"
        selection = {
          tagStatus   = "any"
          countType   = "imageCountMoreThan"
          countNumber = var.ecr_keep_images
        }
        action = { type = "expire" }
      },
    ]
  })
}
