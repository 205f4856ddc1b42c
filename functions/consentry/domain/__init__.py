"""Pure domain logic: no boto3, no I/O."""
