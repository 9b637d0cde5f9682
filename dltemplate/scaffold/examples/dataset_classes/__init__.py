"""Your Dataset classes: plain torch Datasets (named so as not to shadow HuggingFace's
`datasets`). Configs import them by module (`from dataset_classes.digits import DigitsDataset`)."""
