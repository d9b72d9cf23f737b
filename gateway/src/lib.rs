//! The stateless HTTP gateway: validation, the API error model, leader following, retries and admission control.
