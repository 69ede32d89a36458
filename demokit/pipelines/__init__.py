"""Pipelines: the jobs that chain the stages (collect demonstrations, imitation, reward models)."""

from demokit.pipelines.collect import CollectConfig, CollectionInterrupted, CollectResult, collect_demo_data
from demokit.pipelines.il import serial_pipeline_bc, serial_pipeline_il
from demokit.pipelines.reward_model import (
    IRLConfig,
    IRLResult,
    run_irl,
    serial_pipeline_reward_model_offpolicy,
    serial_pipeline_reward_model_onpolicy,
)
