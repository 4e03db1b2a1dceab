"""Training one LoRA adapter with TRL's GRPOTrainer: the trainer and GRPOConfig mapping (``trainer``), the
reward functions (``rewards``), and W&B inside training (``wandb_guard``)."""
