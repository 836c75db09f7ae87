// The page elements every module works on. Module scripts run after the document is parsed, so these exist.

export const $ = (selector, root = document) => root.querySelector(selector);
export const form = $("#topology");
export const canvas = $("#grid");
