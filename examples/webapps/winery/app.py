"""Winery: set a wine's eleven measurements, press Predict, read the predicted quality.

    WINERY_PREDICTION_URL=http://HOST:PORT/v2/models/NAME/infer streamlit run app.py

The last page of the FuseML story: the workflow has deployed the wine model and
printed its prediction URL; this page sends one V2 request to it (the real-client
body, see v2_client.py) and shows the answer. The page only draws: the request,
the reply and every error message come from v2_client.py, the fields from
features.py and the explanation from quality.py, so all three are tested
without a browser. Every failure is shown as a message on the page.
"""

from __future__ import annotations

import json
import os

import streamlit as st
from features import FEATURES
from quality import explain
from v2_client import PredictionError, build_request, infer_url, predict

URL_ENV = "WINERY_PREDICTION_URL"
URL_LABEL = "Prediction URL"
RESULT_LABEL = "Predicted quality"
COLUMNS = 3


def feature_inputs() -> list[float]:
    """One number field per feature, in training order, bounded by the data set's range."""
    columns = st.columns(COLUMNS)
    values = []
    for index, feature in enumerate(FEATURES):
        with columns[index % COLUMNS]:
            values.append(
                st.number_input(
                    feature.label,
                    min_value=feature.minimum,
                    max_value=feature.maximum,
                    value=feature.median,
                    step=feature.step,
                    format=feature.number_format,
                    help=feature.help,
                    key=f"feature-{feature.name}",
                )
            )
    return values


def show_prediction(url: str, values: list[float]) -> None:
    """Ask the model and show the score and what it means, or why there is none."""
    try:
        with st.spinner("Asking the model..."):
            score = predict(url, values)
    except PredictionError as e:
        st.error(f"No prediction: {e}")
        return
    except Exception as e:  # noqa: BLE001 - the page's last line of defence: a message, never a traceback
        st.error(f"No prediction: unexpected {type(e).__name__}: {e}")
        return
    st.metric(RESULT_LABEL, f"{score:.3f}")
    st.write(explain(score))
    with st.expander("The request that was sent"):
        st.code(f"POST {infer_url(url)}\n{json.dumps(build_request(values))}", language="text")


def main() -> None:
    st.set_page_config(page_title="Winery", page_icon="🍷", layout="centered")
    st.title("Winery")
    st.write(
        "Predict a white wine's quality from its lab measurements with the model the "
        "FuseML workflow deployed. Fields start at the median wine of the training data."
    )
    with st.form("wine", enter_to_submit=False):
        url = st.text_input(
            URL_LABEL,
            value=os.environ.get(URL_ENV, ""),
            placeholder="http://127.0.0.1:8080/v2/models/wine/infer",
            help=f"The URL the workflow printed as prediction-url (pre-filled from ${URL_ENV}).",
        )
        values = feature_inputs()
        submitted = st.form_submit_button("Predict", type="primary")
    if submitted:
        show_prediction(url, values)


main()
