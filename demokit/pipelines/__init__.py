"""Pipelines: the jobs that chain the stages (collect demonstrations, imitation, reward models)."""

from demokit.pipelines.collect import CollectConfig, CollectionInterrupted, CollectResult, collect_demo_data
from demokit.pipelines.il import serial_pipeline_il
