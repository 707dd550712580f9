output "stack_id" {
  description = "The responder stack's id."
  value       = aws_cloudformation_stack.responder.id
}

output "stack_outputs" {
  description = "The responder stack's outputs (template.yaml's Outputs), by name."
  value       = aws_cloudformation_stack.responder.outputs
}

output "responder_role_arn" {
  description = "The function's execution role: what member-role.yaml's ResponderRoleArn parameter takes."
  value       = aws_cloudformation_stack.responder.outputs["ResponderRoleArn"]
}

output "function_name" {
  description = "The responder function's name."
  value       = aws_cloudformation_stack.responder.outputs["ResponderFunctionName"]
}

output "member_role_stack_set_id" {
  description = "The member-role StackSet's id; null without deploy_member_role."
  value       = one(aws_cloudformation_stack_set.member_role[*].stack_set_id)
}

output "member_role_stack_set_arn" {
  description = "The member-role StackSet's ARN; null without deploy_member_role."
  value       = one(aws_cloudformation_stack_set.member_role[*].arn)
}
