"""params.yaml loaded once into typed, validated, frozen dataclasses (sections.py); strict reading (loader.py);
type checking and read recording (schema.py)."""

from styleid.params.data_sections import DataParams, DomainsParams, SplitParams, SyntheticParams
from styleid.params.loader import load_params, params_from_dict
from styleid.params.schema import READS_ENV, record_reads, save_reads
from styleid.params.sections import (
                                     AugmentParams,
                                     EmbedParams,
                                     EvaluateParams,
                                     IndexParams,
                                     ModelParams,
                                     Params,
                                     RetrieveParams,
                                     TrainParams,
)

__all__ = ["AugmentParams", "DataParams", "DomainsParams", "EmbedParams", "EvaluateParams", "IndexParams", "ModelParams", "Params",
           "READS_ENV", "RetrieveParams", "SplitParams", "SyntheticParams", "TrainParams", "load_params", "params_from_dict",
           "record_reads", "save_reads"]
