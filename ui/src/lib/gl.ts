// A focused WebGL2 renderer for one frame: the texture holds modality values
// (f32) or RGB; the shader applies the window exactly as PS3.3 C.11 does, so
// dragging the window costs one draw call, never a re-upload.

const VERTEX = `#version 300 es
in vec2 a_corner;            // image corner in image-centred pixels
in vec2 a_uv;
uniform mat3 u_view;          // image pixels -> clip space
out vec2 v_uv;
void main() {
  vec3 p = u_view * vec3(a_corner, 1.0);
  gl_Position = vec4(p.xy, 0.0, 1.0);
  v_uv = a_uv;
}`;

const FRAGMENT = `#version 300 es
precision highp float;
uniform highp sampler2D u_tex;
uniform int u_mode;           // 0 LINEAR, 1 LINEAR_EXACT, 2 SIGMOID, 3 RGB as stored
uniform float u_center;
uniform float u_width;
uniform bool u_invert;
in vec2 v_uv;
out vec4 o;
void main() {
  vec4 t = texture(u_tex, v_uv);
  if (u_mode == 3) {
    vec3 c = u_invert ? 1.0 - t.rgb : t.rgb;
    o = vec4(c, 1.0);
    return;
  }
  float m = t.r;
  float y;
  if (u_mode == 2) {
    y = 1.0 / (1.0 + exp(-4.0 * (m - u_center) / u_width));
  } else {
    float c = u_mode == 0 ? u_center - 0.5 : u_center;
    float w = u_mode == 0 ? u_width - 1.0 : u_width;
    if (m <= c - w / 2.0) y = 0.0;
    else if (m > c + w / 2.0) y = 1.0;
    else y = (m - c) / w + 0.5;
  }
  y = floor(y * 255.0 + 0.5) / 255.0;   // one rounding, as the reference
  if (u_invert) y = 1.0 - y;
  o = vec4(y, y, y, 1.0);
}`;

export interface View {
  zoom: number; // screen pixels per image pixel
  panX: number; // screen pixels
  panY: number;
  rotation: 0 | 90 | 180 | 270;
  flipH: boolean;
  flipV: boolean;
}

export interface Shading {
  mode: 0 | 1 | 2 | 3;
  center: number;
  width: number;
  invert: boolean;
}

function compile(gl: WebGL2RenderingContext, type: number, src: string): WebGLShader {
  const s = gl.createShader(type)!;
  gl.shaderSource(s, src);
  gl.compileShader(s);
  if (!gl.getShaderParameter(s, gl.COMPILE_STATUS)) throw new Error(gl.getShaderInfoLog(s) ?? "shader error");
  return s;
}

export class FrameRenderer {
  private gl: WebGL2RenderingContext;
  private program: WebGLProgram;
  private texture: WebGLTexture;
  private buffer: WebGLBuffer;
  width = 0;
  height = 0;

  constructor(canvas: HTMLCanvasElement) {
    const gl = canvas.getContext("webgl2", { preserveDrawingBuffer: true, antialias: false });
    if (!gl) throw new Error("This computer's graphics do not support WebGL2, which the viewer needs.");
    this.gl = gl;
    gl.getExtension("OES_texture_float_linear");
    const p = gl.createProgram()!;
    gl.attachShader(p, compile(gl, gl.VERTEX_SHADER, VERTEX));
    gl.attachShader(p, compile(gl, gl.FRAGMENT_SHADER, FRAGMENT));
    gl.linkProgram(p);
    if (!gl.getProgramParameter(p, gl.LINK_STATUS)) throw new Error(gl.getProgramInfoLog(p) ?? "link error");
    this.program = p;
    this.texture = gl.createTexture()!;
    this.buffer = gl.createBuffer()!;
  }

  /** Uploads a frame: f32 modality values (1 channel) or RGB bytes. */
  upload(bytes: ArrayBuffer, width: number, height: number, format: "modality-f32" | "rgb8") {
    const gl = this.gl;
    this.width = width;
    this.height = height;
    gl.bindTexture(gl.TEXTURE_2D, this.texture);
    gl.pixelStorei(gl.UNPACK_ALIGNMENT, 1);
    const linear = format === "rgb8" || !!gl.getExtension("OES_texture_float_linear");
    gl.texParameteri(gl.TEXTURE_2D, gl.TEXTURE_MIN_FILTER, linear ? gl.LINEAR : gl.NEAREST);
    gl.texParameteri(gl.TEXTURE_2D, gl.TEXTURE_MAG_FILTER, gl.NEAREST);
    gl.texParameteri(gl.TEXTURE_2D, gl.TEXTURE_WRAP_S, gl.CLAMP_TO_EDGE);
    gl.texParameteri(gl.TEXTURE_2D, gl.TEXTURE_WRAP_T, gl.CLAMP_TO_EDGE);
    if (format === "modality-f32") {
      gl.texImage2D(gl.TEXTURE_2D, 0, gl.R32F, width, height, 0, gl.RED, gl.FLOAT, new Float32Array(bytes));
    } else {
      gl.texImage2D(gl.TEXTURE_2D, 0, gl.RGB8, width, height, 0, gl.RGB, gl.UNSIGNED_BYTE, new Uint8Array(bytes));
    }
  }

  /** The zoom at which the whole (rotated) image fits the canvas. */
  fitZoom(view: View, cw: number, ch: number): number {
    const sideways = view.rotation === 90 || view.rotation === 270;
    const iw = sideways ? this.height : this.width;
    const ih = sideways ? this.width : this.height;
    return Math.min(cw / iw, ch / ih);
  }

  draw(view: View, shading: Shading, cw: number, ch: number) {
    const gl = this.gl;
    gl.viewport(0, 0, cw, ch);
    gl.clearColor(0, 0, 0, 1);
    gl.clear(gl.COLOR_BUFFER_BIT);
    if (!this.width) return;
    gl.useProgram(this.program);
    const w = this.width / 2;
    const h = this.height / 2;
    // corner x, y (image pixels, y down) and uv
    const data = new Float32Array([-w, -h, 0, 0, w, -h, 1, 0, -w, h, 0, 1, w, h, 1, 1]);
    gl.bindBuffer(gl.ARRAY_BUFFER, this.buffer);
    gl.bufferData(gl.ARRAY_BUFFER, data, gl.DYNAMIC_DRAW);
    const aCorner = gl.getAttribLocation(this.program, "a_corner");
    const aUv = gl.getAttribLocation(this.program, "a_uv");
    gl.enableVertexAttribArray(aCorner);
    gl.vertexAttribPointer(aCorner, 2, gl.FLOAT, false, 16, 0);
    gl.enableVertexAttribArray(aUv);
    gl.vertexAttribPointer(aUv, 2, gl.FLOAT, false, 16, 8);
    const rad = (view.rotation * Math.PI) / 180;
    const cos = Math.cos(rad);
    const sin = Math.sin(rad);
    const fx = view.flipH ? -1 : 1;
    const fy = view.flipV ? -1 : 1;
    const sx = (2 * view.zoom) / cw;
    const sy = (2 * view.zoom) / ch;
    // clip = S · R · F · p + T, with y flipped (image y down, clip y up); column-major.
    const m = new Float32Array([
      sx * cos * fx, -sy * sin * fx, 0,
      -sx * sin * fy, -sy * cos * fy, 0,
      (2 * view.panX) / cw, (-2 * view.panY) / ch, 1,
    ]);
    gl.uniformMatrix3fv(gl.getUniformLocation(this.program, "u_view"), false, m);
    gl.uniform1i(gl.getUniformLocation(this.program, "u_mode"), shading.mode);
    gl.uniform1f(gl.getUniformLocation(this.program, "u_center"), shading.center);
    gl.uniform1f(gl.getUniformLocation(this.program, "u_width"), shading.width);
    gl.uniform1i(gl.getUniformLocation(this.program, "u_invert"), shading.invert ? 1 : 0);
    gl.activeTexture(gl.TEXTURE0);
    gl.bindTexture(gl.TEXTURE_2D, this.texture);
    gl.uniform1i(gl.getUniformLocation(this.program, "u_tex"), 0);
    gl.drawArrays(gl.TRIANGLE_STRIP, 0, 4);
  }
}
